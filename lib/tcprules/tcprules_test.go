package tcprules

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/colinmarc/cdb"
)

// writeRules writes a cdb in the form tcprules writes: the values below
// are what `cdb -d` shows for a tcprules-compiled file.
func writeRules(t *testing.T, rules map[string]string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rules.cdb")
	w, err := cdb.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range rules {
		if err := w.Put([]byte(k), []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Freeze(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestKeys(t *testing.T) {
	for ip, want := range map[string][]string{
		"127.0.0.2":   {"127.0.0.2", "127.0.0.", "127.0.", "127.", ""},
		"10.1.22.3":   {"10.1.22.3", "10.1.22.", "10.1.", "10.", ""},
		"2001:db8::1": {"2001:db8::1", "2001:db8::", "2001:db8:", "2001:", ""},
		"":            {""},
	} {
		if got := Keys(ip); !reflect.DeepEqual(got, want) {
			t.Errorf("Keys(%q) = %q, want %q", ip, got, want)
		}
	}
}

func TestLookup(t *testing.T) {
	path := writeRules(t, map[string]string{
		"127.0.0.1":     "+RELAYCLIENT=-k\x00+X=a=b\x00",
		"127.0.0.3":     "D\x00",
		"127.0.":        "+FOO=pre\x00",
		"127.0.0.4":     "", // allow, nothing set
		"=host.example": "+H=1\x00",
		"":              "+DEF=1\x00",
	})
	for _, c := range []struct {
		ip   string
		want Verdict
	}{
		{"127.0.0.1", Verdict{Key: "127.0.0.1", Matched: true, Env: []string{"RELAYCLIENT=-k", "X=a=b"}}},
		{"127.0.0.2", Verdict{Key: "127.0.", Matched: true, Env: []string{"FOO=pre"}}},
		{"127.0.0.3", Verdict{Key: "127.0.0.3", Matched: true, Deny: true}},
		{"127.0.0.4", Verdict{Key: "127.0.0.4", Matched: true}},
		{"127.0.0.40", Verdict{Key: "127.0.", Matched: true, Env: []string{"FOO=pre"}}},
		{"10.0.0.1", Verdict{Key: "", Matched: true, Env: []string{"DEF=1"}}},
	} {
		got, err := Lookup(path, c.ip)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: got %+v, want %+v", c.ip, got, c.want)
		}
	}
}

func TestLookupNoMatch(t *testing.T) {
	path := writeRules(t, map[string]string{"10.": "D\x00"})
	got, err := Lookup(path, "127.0.0.1")
	if err != nil || got.Matched || got.Deny || got.Env != nil {
		t.Errorf("got %+v, %v; want no match, allowed", got, err)
	}
}

func TestLookupMissingFile(t *testing.T) {
	if _, err := Lookup(filepath.Join(t.TempDir(), "none.cdb"), "127.0.0.1"); !os.IsNotExist(err) {
		t.Errorf("err %v, want not-exist", err)
	}
}

func TestLookupDamagedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.cdb")
	os.WriteFile(path, []byte("short"), 0o644)
	if _, err := Lookup(path, "127.0.0.1"); err == nil {
		t.Error("a damaged cdb was read without an error")
	}
}

func TestParse(t *testing.T) {
	for in, want := range map[string]Verdict{
		"":                          {},
		"D\x00":                     {Deny: true},
		"+A=1\x00D\x00":             {Deny: true, Env: []string{"A=1"}},
		"+A=\x00":                   {Env: []string{"A="}},
		"+NOEQUALS\x00+=x\x00?\x00": {},
		"+A=1\x00+B=unterminated":   {Env: []string{"A=1"}},
	} {
		if got := Parse([]byte(in)); !reflect.DeepEqual(got, want) {
			t.Errorf("Parse(%q) = %+v, want %+v", in, got, want)
		}
	}
}
