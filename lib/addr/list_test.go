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
		// Domain literals are taken whole: their colons end no group's
		// name, their commas separate nothing.
		{"bob@[IPv6:2001:db8::1]", []string{"bob@[IPv6:2001:db8::1]"}},
		{"a@x, bob@[IPv6:::1], c@y", []string{"a@x", "bob@[IPv6:::1]", "c@y"}},
		{"Bob <bob@[IPv6:::1]>", []string{"bob@[IPv6:::1]"}},
		{"<@[IPv6:::1],@b:bob@c>", []string{"bob@c"}},
		{"bob@[ 192.0.2.1 ]", []string{"bob@[192.0.2.1]"}},
		{"x@[a,b]", []string{"x@[a,b]"}},
		{"team: bob@[IPv6:::1], c@y;", []string{"bob@[IPv6:::1]", "c@y"}},
		// An unclosed '[' is an ordinary character.
		{"a@[x, b@y", []string{"a@[x", "b@y"}},
		// A ':' after an '@' is no group's: it stays in the address
		// (which the envelope check then judges).
		{"bob@host:25", []string{"bob@host:25"}},
		{`"a@b": c@d;`, []string{"c@d"}},
		// One '@' in the display name, one address in brackets.
		{"bob@x.org <bob@x.org>", []string{"bob@x.org"}},
	} {
		got, err := ParseList(c.in)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseList(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

// An item that would make an address with two '@' is an error naming
// it: a missing comma never glues two addresses into one.
func TestParseListRejectsTwoAddressesInOne(t *testing.T) {
	for _, in := range []string{
		"a@x.example b@y.example",
		"c@z.example, a@x.example b@y.example",
		"Two <a@x.example b@y.example>",
		"a@x.example@y.example",
		"list: a@x.example b@y.example;",
		"a@b:c@d",
	} {
		got, err := ParseList(in)
		if err == nil {
			t.Errorf("ParseList(%q) = %q, want an error", in, got)
			continue
		}
		if !strings.Contains(err.Error(), "more than one @") {
			t.Errorf("ParseList(%q): %v", in, err)
		}
	}
	_, err := ParseList("c@z.example, a@x.example b@y.example")
	if err == nil || !strings.Contains(err.Error(), `"a@x.example b@y.example"`) {
		t.Errorf("the error does not name the item: %v", err)
	}
	// Quoted and literal '@' do not count.
	for _, in := range []string{`"a@b"@x.example`, `x@[a@b]`} {
		if got, err := ParseList(in); err != nil || len(got) != 1 {
			t.Errorf("ParseList(%q) = %q, %v", in, got, err)
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
	f.Add("bob@[IPv6:2001:db8::1], a@x b@y")
	f.Add(`<@[::1]:"q\ r"@[a\ b]>`)
	f.Fuzz(func(t *testing.T, s string) {
		list, err := ParseList(s)
		if err != nil {
			if list != nil {
				t.Fatalf("addresses %q and error %v from %q", list, err, s)
			}
			return
		}
		for _, a := range list {
			if a == "" {
				t.Fatalf("empty address from %q", s)
			}
			// Never two addresses glued into one.
			if countAt(a) > 1 {
				t.Fatalf("%q from %q holds more than one @", a, s)
			}
			// Addresses never carry white space outside quotes, so they
			// cannot smuggle a header line.
			if !strings.Contains(a, `"`) && strings.ContainsAny(a, " \t\r\n") {
				t.Fatalf("white space in %q from %q", a, s)
			}
		}
	})
}
