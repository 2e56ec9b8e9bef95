package addr

import (
	"strings"
	"testing"
)

func TestForSMTP(t *testing.T) {
	for _, c := range [][2]string{
		{"", ""},
		{"bob@example.org", "bob@example.org"},
		{"first.last+tag@example.org", "first.last+tag@example.org"},
		{"john smith@example.org", `"john smith"@example.org`},
		{`"john smith"@example.org`, `"john smith"@example.org`},
		{`x> NOTIFY=NEVER ORCPT=rfc822;a@evil.example`, `"x> NOTIFY=NEVER ORCPT=rfc822;a"@evil.example`},
		{`a"b@x`, `"a\"b"@x`},
		{`.lead@x`, `".lead"@x`},
		{"postmaster", "postmaster"},
		{"#@[]", "#@[]"},
	} {
		if got := ForSMTP(c[0]); got != c[1] {
			t.Errorf("ForSMTP(%q) = %q, want %q", c[0], got, c[1])
		}
	}
}

func FuzzForSMTP(f *testing.F) {
	f.Add("x> SIZE=1@evil")
	f.Add(`"q\"uoted"@x`)
	f.Fuzz(func(t *testing.T, a string) {
		if strings.ContainsAny(a, "\r\n\x00") {
			return
		}
		q := ForSMTP(a)
		at := strings.LastIndexByte(q, '@')
		local := q
		if at >= 0 {
			local = q[:at]
		}
		// What goes between the brackets never holds a '>' or a space
		// outside a quoted local part.
		if !quotedString(local) && strings.ContainsAny(local, "> ") {
			t.Fatalf("ForSMTP(%q) = %q", a, q)
		}
		if at >= 0 && strings.ContainsAny(q[at:], "> ") && !strings.ContainsAny(a[strings.LastIndexByte(a, '@'):], "> ") {
			t.Fatalf("domain changed: %q -> %q", a, q)
		}
	})
}
