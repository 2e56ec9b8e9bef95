package dotomail

import (
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	in := "# my mail\n\n|preline /usr/bin/procmail -t  \n&bob@example.org\nann\n./Maildir/ \n./mbox\r\n/var/mail/x\n  \n#x\n|echo \"$SENDER\" >> log"
	got, err := Parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []Instruction{
		{Program, "preline /usr/bin/procmail -t  ", 3},
		{Forward, "bob@example.org", 4},
		{Forward, "ann", 5},
		{Maildir, "./Maildir/", 6},
		{Mbox, "./mbox", 7},
		{Mbox, "/var/mail/x", 8},
		{Program, `echo "$SENDER" >> log`, 11},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{"|\n", "& \n", "-x\n", "<a@b>\n", "a b@c\n", "./x\x01y\n", "|a\x00b", "a,b\n"} {
		if got, err := Parse(strings.NewReader(in)); err == nil {
			t.Errorf("%q: no error, got %+v", in, got)
		}
	}
}

// As qmail: an empty file means the default delivery (no instruction),
// a file of comments only discards the message, and blank lines alone
// are an empty file, never a discard.
func TestParseEmptyAndCommentsOnly(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []Instruction
	}{
		{"", nil},
		{"\n", nil},
		{" \n\t\r\n\n", nil},
		{"# nothing\n\n", []Instruction{{Discard, "", 1}}},
		{"\n#spam goes nowhere", []Instruction{{Discard, "", 2}}},
		{"#\n./Maildir/\n", []Instruction{{Maildir, "./Maildir/", 2}}},
	} {
		got, err := Parse(strings.NewReader(c.in))
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: got %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
}

func TestTooLarge(t *testing.T) {
	if _, err := Parse(strings.NewReader(strings.Repeat("#\n", MaxSize))); err == nil {
		t.Fatal("no error")
	}
}

// FuzzParse: no input panics, and every instruction is well formed.
func FuzzParse(f *testing.F) {
	f.Add("|cmd\n&a@b\n./M/\n")
	f.Add("# c\n\nbob\n/x\n")
	f.Fuzz(func(t *testing.T, in string) {
		ins, err := Parse(strings.NewReader(in))
		if err != nil {
			return
		}
		for _, i := range ins {
			switch i.Kind {
			case Program:
				if strings.ContainsAny(i.Value, "\n\x00") {
					t.Fatalf("program %q", i.Value)
				}
			case Forward:
				if i.Value == "" || strings.ContainsAny(i.Value, " \t\r\n<>,") {
					t.Fatalf("forward %q", i.Value)
				}
			case Mbox, Maildir:
				if (i.Value[0] != '.' && i.Value[0] != '/') || strings.ContainsAny(i.Value, "\r\n") ||
					(i.Kind == Maildir) != strings.HasSuffix(i.Value, "/") {
					t.Fatalf("path %q kind %v", i.Value, i.Kind)
				}
			case Discard:
				if len(ins) != 1 || i.Value != "" {
					t.Fatalf("discard among %+v", ins)
				}
			default:
				t.Fatalf("kind %v", i.Kind)
			}
		}
	})
}
