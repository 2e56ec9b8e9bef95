package envelope

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

func TestRoundTrip(t *testing.T) {
	for _, e := range []*Envelope{
		{Sender: "a@example.org", Rcpts: []string{"b@example.net"}},
		{Sender: "", Rcpts: []string{"x@y", "z@w", "ü@例え.jp"}},
	} {
		var b bytes.Buffer
		if err := Write(&b, e); err != nil {
			t.Fatal(err)
		}
		got, err := Read(&b)
		if err != nil || !reflect.DeepEqual(got, e) {
			t.Errorf("round trip %+v: got %+v, %v", e, got, err)
		}
	}
}

func TestBadEnvelopes(t *testing.T) {
	for _, c := range []struct {
		in   string
		want error
	}{
		{"", ErrRead},
		{"Fa@b\x00Tc@d\x00", ErrRead},       // no final NUL
		{"Fa@b\x00Tc@d", ErrRead},           // cut inside a recipient
		{"Fa@b\x00\x00", ErrFormat},         // no recipients
		{"Xa@b\x00Tc@d\x00\x00", ErrFormat}, // not F first
		{"Fa@b\x00Xc@d\x00\x00", ErrFormat},
		{"Fa@b\x00T\x00\x00", ErrFormat},        // empty recipient
		{"Fa@b\x00Tc@d\x00\x00junk", ErrFormat}, // data after the end
		{"Fa\nb@c\x00Tc@d\x00\x00", ErrFormat},  // control character
		{"Fa@b\x00Tc\r@d\x00\x00", ErrFormat},   // control character
		{"Fa@b\x00T" + strings.Repeat("x", 2000) + "\x00\x00", ErrTooLong},
	} {
		_, err := Read(strings.NewReader(c.in))
		if !errors.Is(err, c.want) {
			t.Errorf("Read(%q): %v, want %v", c.in, err, c.want)
		}
	}
}

func TestReadErrorIsTemporary(t *testing.T) {
	_, err := Read(iotest.ErrReader(errors.New("boom")))
	if !errors.Is(err, ErrRead) {
		t.Errorf("I/O error: %v, want ErrRead", err)
	}
	// An error after the final NUL, while checking that nothing follows,
	// is still a read error: the caller cannot know the envelope ended.
	_, err = Read(iotest.TimeoutReader(strings.NewReader("Fa@b\x00Tc@d\x00\x00")))
	if !errors.Is(err, ErrRead) {
		t.Errorf("error after the end: %v, want ErrRead", err)
	}
}

func FuzzRead(f *testing.F) {
	f.Add([]byte("Fa@b\x00Tc@d\x00\x00"))
	f.Add([]byte("F\x00Tpostmaster\x00Tx@y\x00\x00"))
	f.Add([]byte("Fa@b\x00Tc@d\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := Read(bytes.NewReader(data))
		if err != nil {
			if e != nil {
				t.Fatal("envelope returned with an error")
			}
			return
		}
		// Whatever parses must write back to the same bytes.
		var b bytes.Buffer
		Write(&b, e)
		if !bytes.Equal(b.Bytes(), data) {
			t.Fatalf("re-encoding %q gave %q", data, b.Bytes())
		}
	})
}
