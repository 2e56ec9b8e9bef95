package control

import (
	"os"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"
)

func testDir(t *testing.T, files map[string]string) *Dir {
	t.Helper()
	d := &Dir{Path: t.TempDir(), Hostname: func() (string, error) { return "host.example", nil }}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(d.Path, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

func TestLineAsAPersonMeansIt(t *testing.T) {
	d := testDir(t, map[string]string{
		"me":            "kiosk.example  \r\nignored second line\n",
		"databytes":     "1000\t \r\n",
		"bouncefrom":    "postmaster", // no trailing newline
		"defaulthost":   "\n",         // empty first line: the default
		"smtpgreeting":  "  hello there  \n",
		"queuelifetime": "not a number\n",
	})
	for _, c := range []struct{ name, want string }{
		{"me", "kiosk.example"},
		{"databytes", "1000"},
		{"bouncefrom", "postmaster"},
		{"defaulthost", "kiosk.example"}, // falls back to me
		{"locals", "kiosk.example"},
		{"smtpgreeting", "hello there"},
		{"mailspool", "/var/mail"},
		{"doublebounceto", "postmaster"},
		{"nosuchfile", ""},
	} {
		got, err := d.Line(c.name)
		if err != nil || got != c.want {
			t.Errorf("Line(%q) = %q, %v; want %q", c.name, got, err, c.want)
		}
	}
	if n, err := d.Int("databytes"); err != nil || n != 1000 {
		t.Errorf("Int(databytes) = %d, %v", n, err)
	}
	if n, err := d.Int("maxrcpt"); err != nil || n != 100 {
		t.Errorf("Int(maxrcpt) default = %d, %v", n, err)
	}
	if _, err := d.Int("queuelifetime"); err == nil {
		t.Error("Int on garbage gave no error")
	}
}

func TestMeFromHostname(t *testing.T) {
	d := testDir(t, nil)
	if me, err := d.Me(); err != nil || me != "host.example" {
		t.Errorf("Me() = %q, %v", me, err)
	}
}

func TestList(t *testing.T) {
	d := testDir(t, map[string]string{
		"rcpthosts": "# our domains\r\nexample.org\r\n\r\n  example.net  \n#commented.example\nlast.example",
	})
	got, err := d.List("rcpthosts")
	want := []string{"example.org", "example.net", "last.example"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("List = %q, %v; want %q", got, err, want)
	}
	// A missing list with no default is empty; with "me" as default, me.
	if got, err := d.List("relayclients"); err != nil || len(got) != 0 {
		t.Errorf("missing list = %q, %v", got, err)
	}
	if got, err := d.List("locals"); err != nil || !reflect.DeepEqual(got, []string{"host.example"}) {
		t.Errorf("locals default = %q, %v", got, err)
	}
	// An existing empty file is an empty list, not the default.
	d2 := testDir(t, map[string]string{"locals": "# none\n"})
	if got, err := d2.List("locals"); err != nil || len(got) != 0 {
		t.Errorf("empty locals = %q, %v", got, err)
	}
}

func TestUnreadableIsAnErrorNotMissing(t *testing.T) {
	d := testDir(t, nil)
	// A directory where a file should be gives a read error.
	if err := os.Mkdir(filepath.Join(d.Path, "locals"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := d.List("locals"); err == nil {
		t.Error("List on an unreadable control file: no error")
	}
	if syscall.Geteuid() != 0 {
		p := filepath.Join(d.Path, "me")
		os.WriteFile(p, []byte("x\n"), 0o000)
		if _, err := d.Me(); err == nil {
			t.Error("Me on an unreadable file: no error")
		}
	}
}

func TestDomainMap(t *testing.T) {
	m, err := ParseDomainMap("smtproutes", []string{
		"example.org:relay1.example:2525",
		".example.org:relay2.example",
		".org:relay3.example",
		"Upper.Example.:relay4.example",
		":smarthost.example",
		"example.org:second-ignored",
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ dom, want, key string }{
		{"example.org", "relay1.example:2525", "example.org"},
		{"EXAMPLE.ORG.", "relay1.example:2525", "example.org"},
		{"a.example.org", "relay2.example", ".example.org"},
		{"b.a.example.org", "relay2.example", ".example.org"},
		{"other.org", "relay3.example", ".org"},
		{"upper.example", "relay4.example", "upper.example"},
		{"elsewhere.net", "smarthost.example", ""},
	} {
		v, k, ok := m.Lookup(c.dom)
		if !ok || v != c.want || k != c.key {
			t.Errorf("Lookup(%q) = %q, %q, %v; want %q, %q", c.dom, v, k, ok, c.want, c.key)
		}
	}
	if _, err := ParseDomainMap("x", []string{"no colon here"}); err == nil {
		t.Error("a line without a colon was accepted")
	}
	empty, _ := ParseDomainMap("x", nil)
	if _, _, ok := empty.Lookup("example.org"); ok {
		t.Error("empty map matched")
	}
}

func TestCDB(t *testing.T) {
	d := testDir(t, nil)
	c, err := d.OpenCDB("missing.cdb")
	if err != nil || c != nil {
		t.Fatalf("missing cdb: %v, %v", c, err)
	}
	if _, ok, err := c.Get("x"); ok || err != nil {
		t.Error("nil CDB found something")
	}
}

func TestEntries(t *testing.T) {
	d := &Dir{Path: t.TempDir()}
	if e, ok, err := d.Entries("ocmppeers"); e != nil || ok || err != nil {
		t.Errorf("missing file: %v %v %v", e, ok, err)
	}
	os.WriteFile(filepath.Join(d.Path, "ocmppeers"), []byte("# peers\n\n  k1 -  \n\t# more\nk2 x\r\n"), 0o644)
	e, ok, err := d.Entries("ocmppeers")
	if !ok || err != nil || len(e) != 2 || e[0] != (Entry{3, "k1 -"}) || e[1] != (Entry{5, "k2 x"}) {
		t.Errorf("got %v %v %v", e, ok, err)
	}
	os.WriteFile(filepath.Join(d.Path, "empty"), nil, 0o644)
	if e, ok, err := d.Entries("empty"); e != nil || !ok || err != nil {
		t.Errorf("empty file: %v %v %v", e, ok, err)
	}
}

func TestEntryErrorf(t *testing.T) {
	err := Entry{Line: 7, Text: "x"}.Errorf("ocmppeers", "bad %q", "x")
	if err.Error() != `control file ocmppeers: line 7: bad "x"` {
		t.Errorf("%v", err)
	}
}

// An internationalised domain is one domain whether written as U-labels
// or A-labels, in a control file and in a lookup.
func TestNormalizeDomainIDN(t *testing.T) {
	for in, want := range map[string]string{
		"Bücher.Example.":       "xn--bcher-kva.example",
		"xn--bcher-kva.example": "xn--bcher-kva.example",
		"EXAMPLE.org":           "example.org",
		".":                     ".",
	} {
		if got := NormalizeDomain(in); got != want {
			t.Errorf("NormalizeDomain(%q) = %q, want %q", in, got, want)
		}
	}
	h := t.TempDir()
	os.MkdirAll(filepath.Join(h, "control"), 0o755)
	os.WriteFile(filepath.Join(h, "control", "smtproutes"), []byte("bücher.example:relay.example\n"), 0o644)
	m, err := New(h).DomainMap("smtproutes")
	if err != nil {
		t.Fatal(err)
	}
	if v, _, ok := m.Lookup("XN--BCHER-KVA.example"); !ok || v != "relay.example" {
		t.Errorf("A-label lookup of a U-label route: %q %v", v, ok)
	}
}
