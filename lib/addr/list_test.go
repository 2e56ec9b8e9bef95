package addr

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseList(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"bob", []string{"bob"}},
		{"bob@example.org", []string{"bob@example.org"}},
		{"Bob Smith <bob@example.org>, carol@example.net", []string{"bob@example.org", "carol@example.net"}},
		{`"Smith, Bob" <bob@example.org>`, []string{"bob@example.org"}},
		{"bob@example.org (Bob, the builder), eve@x.org", []string{"bob@example.org", "eve@x.org"}},
		{"friends: a@x.org, b@y.org;, c@z.org", []string{"a@x.org", "b@y.org", "c@z.org"}},
		{"undisclosed-recipients:;", nil},
		{"<@route.example,@other:user@final.example>", []string{"user@final.example"}},
		{`"john doe"@example.org`, []string{`"john doe"@example.org`}},
		{"john . doe @ example . org", []string{"john.doe@example.org"}},
		{"Broken <bob@example.org", []string{"bob@example.org"}},
		{" , ,, ", nil},
		{"a@b,\n\tc@d", []string{"a@b", "c@d"}},
	} {
		got := ParseList(c.in)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseList(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestQualify(t *testing.T) {
	for _, c := range [][3]string{
		{"bob", "host.example", "bob@host.example"},
		{"bob@", "host.example", "bob@host.example"},
		{"bob@other.example", "host.example", "bob@other.example"},
		{"", "host.example", ""},
	} {
		if got := Qualify(c[0], c[1]); got != c[2] {
			t.Errorf("Qualify(%q, %q) = %q, want %q", c[0], c[1], got, c[2])
		}
	}
	if l, d := Split("a@b@c"); l != "a@b" || d != "c" {
		t.Errorf("Split = %q, %q", l, d)
	}
}

func FuzzParseList(f *testing.F) {
	f.Add(`Bob <bob@x.org>, "q, r" <s@t>, grp: a@b;`)
	f.Add("(comment (nested)) a@b")
	f.Add(`"unterminated`)
	f.Fuzz(func(t *testing.T, s string) {
		for _, a := range ParseList(s) {
			if a == "" {
				t.Fatalf("empty address from %q", s)
			}
			// Addresses never carry white space outside quotes, so they
			// cannot smuggle a header line.
			if !strings.Contains(a, `"`) && strings.ContainsAny(a, " \t\r\n") {
				t.Fatalf("white space in %q from %q", a, s)
			}
		}
	})
}
