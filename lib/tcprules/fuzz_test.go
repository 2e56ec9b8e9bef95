package tcprules

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzParse: a rule's value from a cdb a person compiled is parsed
// without panicking, and every variable it yields is NAME=value with a
// non-empty name, taken from one NUL-ended "+" entry of the value.
func FuzzParse(f *testing.F) {
	f.Add([]byte("D\x00"))
	f.Add([]byte("+RELAYCLIENT=\x00+DATABYTES=100\x00"))
	f.Add([]byte("+A=b=c\x00+=x\x00+NOEQ\x00junk"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		v := Parse(data)
		for _, e := range v.Env {
			name, _, ok := strings.Cut(e, "=")
			if !ok || name == "" {
				t.Fatalf("variable %q from %q", e, data)
			}
			if !bytes.Contains(data, append([]byte("+"+e), 0)) {
				t.Fatalf("variable %q is not an entry of %q", e, data)
			}
		}
		deny := false
		entries := bytes.Split(data, []byte{0})
		for _, e := range entries[:len(entries)-1] { // the last one has no NUL
			deny = deny || bytes.HasPrefix(e, []byte("D"))
		}
		if v.Deny != deny {
			t.Fatalf("deny %v for %q", v.Deny, data)
		}
	})
}

// FuzzKeys: the keys tried for an address are the address, then its
// prefixes ending in '.' or ':', longest first, then "".
func FuzzKeys(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "::1", "2001:db8::1", "", "1.2.3."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ip string) {
		keys := Keys(ip)
		if ip == "" {
			if len(keys) != 1 || keys[0] != "" {
				t.Fatalf("Keys(\"\") = %q", keys)
			}
			return
		}
		if keys[0] != ip || keys[len(keys)-1] != "" {
			t.Fatalf("Keys(%q) = %q", ip, keys)
		}
		for i := 1; i < len(keys)-1; i++ {
			k := keys[i]
			if !strings.HasPrefix(ip, k) || len(k) >= len(keys[i-1]) || !strings.HasSuffix(k, ".") && !strings.HasSuffix(k, ":") {
				t.Fatalf("Keys(%q) = %q: bad key %q", ip, keys, k)
			}
		}
	})
}
