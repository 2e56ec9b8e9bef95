package outcome

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// The zero Result is a temporary failure: a transport that forgets to
// fill one in defers, it never delivers.
func TestZeroIsTemporary(t *testing.T) {
	var r Result
	if r.Status != Temp || r.Status == OK {
		t.Fatalf("zero Result has status %v", r.Status)
	}
	if Status(0).Letter() != LetterTemp {
		t.Fatalf("zero status reports as %q", Status(0).Letter())
	}
	if Status(42).Letter() != LetterTemp {
		t.Fatalf("an unknown status reports as %q", Status(42).Letter())
	}
}

func TestLine(t *testing.T) {
	if got := Line("a\nb\x00c\td\x7fe"); got != "a b c d e" {
		t.Errorf("Line: %q", got)
	}
	long := Line(strings.Repeat("x", MaxText+10))
	if len(long) != MaxText || !strings.HasSuffix(long, "...") || Line(long) != long {
		t.Errorf("Line of a long text: %d bytes", len(long))
	}
	// Cut at a character boundary: a two-byte character across the
	// limit goes whole, and the text stays valid UTF-8.
	cut := Line(strings.Repeat("x", MaxText-4) + "ü and more")
	if cut != strings.Repeat("x", MaxText-4)+"..." || !utf8.ValidString(cut) || Line(cut) != cut {
		t.Errorf("Line cut inside a character: %q", cut[MaxText-8:])
	}
	if got := Cut("ab\rcdefg", 6); got != "ab ..." {
		t.Errorf("Cut: %q", got)
	}
	if r := Tempf("4.3.0 %s", "a\nb"); r.Status != Temp || r.Text != "4.3.0 a b" {
		t.Errorf("Tempf: %+v", r)
	}
	if r := Permf("5.1.1 %d", 7); r.Status != Perm || r.Text != "5.1.1 7" {
		t.Errorf("Permf: %+v", r)
	}
}

func TestReportRoundTrip(t *testing.T) {
	for _, r := range []Result{
		{Status: OK, Text: "delivered: mbox /var/mail/bob", Forward: []string{"a@b", "c d@e"}},
		{Status: Temp, Text: "4.3.0 busy"},
		{Status: Perm, Text: "5.1.1 no"},
		{Status: OK, Text: ""},
	} {
		b := AppendReport(nil, r)
		got, err := ParseReport(b)
		if err != nil || !reflect.DeepEqual(got, r) {
			t.Errorf("%+v -> %q -> %+v %v", r, b, got, err)
		}
	}
	if got := string(AppendReport(nil, Result{Status: Perm, Text: "5.1.1 x"})); got != "D\x005.1.1 x\x00" {
		t.Errorf("encoding: %q", got)
	}
	for _, bad := range []string{"", "K", "K\x00x", "X\x00t\x00", "K\x00t\x00\x00", "K\x00t\x00a\nb\x00", "\x00t\x00"} {
		if _, err := ParseReport([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// A forwarding address that the encoding cannot carry makes the report
// a temporary failure, not a different address list.
func TestReportUnencodableForward(t *testing.T) {
	for _, a := range []string{"a\x00b", "a\nb", ""} {
		got, err := ParseReport(AppendReport(nil, Result{Status: OK, Text: "delivered", Forward: []string{"x@y", a}}))
		if err != nil || got.Status != Temp || got.Forward != nil {
			t.Errorf("forward %q: %+v %v", a, got, err)
		}
	}
}

func TestReadReports(t *testing.T) {
	var b []byte
	want := []Result{{Status: OK, Text: "a said: 250 ok"}, {Status: Perm, Text: "a said: 550 no"}, {Status: Temp, Text: "a said: 451 later"}}
	for _, r := range want {
		b = append(AppendReport(b, r), '\n')
	}
	got, err := ReadReports(strings.NewReader(string(b)+"extra\n"), 3)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("%+v %v", got, err)
	}
	got, err = ReadReports(strings.NewReader(string(b)), 4)
	if !errors.Is(err, io.ErrUnexpectedEOF) || len(got) != 3 {
		t.Fatalf("short: %d reports, %v", len(got), err)
	}
	got, err = ReadReports(strings.NewReader("K\x00ok\x00\nnonsense\n"), 2)
	if err == nil || len(got) != 1 {
		t.Fatalf("bad second report: %d reports, %v", len(got), err)
	}
	got, err = ReadReports(strings.NewReader(strings.Repeat("x", 100<<10)+"\n"), 1)
	if err == nil || len(got) != 0 {
		t.Fatalf("over-long line: %d reports, %v", len(got), err)
	}
}

// FuzzParseReport: no report panics the parent, and what it accepts
// survives a round trip.
func FuzzParseReport(f *testing.F) {
	f.Add([]byte("K\x00delivered\x00a@b\x00"))
	f.Add([]byte("Z\x004.3.0 x\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseReport(b)
		if err != nil {
			return
		}
		r2, err := ParseReport(AppendReport(nil, r))
		if err != nil || !reflect.DeepEqual(r, r2) {
			t.Fatalf("%q: %+v then %+v %v", b, r, r2, err)
		}
	})
}
