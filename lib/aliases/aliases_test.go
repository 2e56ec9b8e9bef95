package aliases

import (
	"reflect"
	"strings"
	"testing"
)

const sample = `# system aliases
postmaster: root
Root: bob, ann@example.org
archive: /var/mail/archive, /home/arc/Maildir/
bugs: "|/usr/local/bin/tracker --queue=bugs, urgent"
staff: bob,
    ann
	# a comment inside is skipped
	, carl
bob: \bob, bob@elsewhere.example
"odd.name": x@y
esc: "|echo \"hi\" \\ there"
`

func TestParseAndLookup(t *testing.T) {
	a, err := Parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]Target{
		"postmaster": {{Forward, "root"}},
		"ROOT":       {{Forward, "bob"}, {Forward, "ann@example.org"}},
		"archive":    {{Mbox, "/var/mail/archive"}, {Maildir, "/home/arc/Maildir/"}},
		"bugs":       {{Program, "/usr/local/bin/tracker --queue=bugs, urgent"}},
		"staff":      {{Forward, "bob"}, {Forward, "ann"}, {Forward, "carl"}},
		"bob":        {{User, "bob"}, {Forward, "bob@elsewhere.example"}},
		"odd.name":   {{Forward, "x@y"}},
		"esc":        {{Program, `echo "hi" \ there`}},
	}
	for name, want := range cases {
		got, ok := a.Lookup(name)
		if !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %+v %v, want %+v", name, got, ok, want)
		}
	}
	if _, ok := a.Lookup("nobody"); ok {
		t.Error("nobody found")
	}
	if a.Len() != len(cases) {
		t.Errorf("Len %d", a.Len())
	}
}

// Each bad input: Compile refuses it naming the line, and Parse defers
// the name "a" rather than guess.
func TestParseErrors(t *testing.T) {
	for _, in := range []string{
		"nocolon\n", " x: y\n", "a: \"b\n", "a:\n", "a: b\na: c\n", "a: :include:etc/list\n",
		"a: |\n", "a: \\\n", "a: b c\n", "a b: c\n", "a: <b@c>\n", ": b\n", "a: \"x\x01\"\n",
	} {
		put := 0
		if _, err := Compile(strings.NewReader(in), func(string, string) error { put++; return nil }); err == nil || !strings.Contains(err.Error(), "line ") {
			t.Errorf("%q: Compile: %v", in, err)
		}
		a, err := Parse(strings.NewReader(in))
		if err != nil {
			t.Errorf("%q: Parse: %v", in, err)
			continue
		}
		if got, ok, err := a.Find("a"); err == nil {
			t.Errorf("%q: Find(a) = %+v %v, no error", in, got, ok)
		}
	}
}

// One bad line defers only what it may decide: a bad entry with a name
// defers that name; the good entries work; a bad line without a
// readable name defers the names no good entry defines.
func TestBadLineDefersOnlyItsName(t *testing.T) {
	a, err := Parse(strings.NewReader("good: bob\nbroken: <x@y>\nother: ann\ndup: a\ndup: b\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got, ok, err := a.Find("Good"); err != nil || !ok || !reflect.DeepEqual(got, []Target{{Forward, "bob"}}) {
		t.Errorf("good: %+v %v %v", got, ok, err)
	}
	if _, _, err := a.Find("other"); err != nil {
		t.Errorf("other: %v", err)
	}
	if _, ok, err := a.Find("broken"); ok || err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("broken: %v %v", ok, err)
	}
	if _, ok, err := a.Find("dup"); ok || err == nil || !strings.Contains(err.Error(), "first on line 4") {
		t.Errorf("dup: %v %v", ok, err)
	}
	if _, ok, err := a.Find("nobody"); ok || err != nil {
		t.Errorf("nobody: %v %v", ok, err)
	}

	a, err = Parse(strings.NewReader("good: bob\nthis line has no colon\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := a.Find("good"); !ok || err != nil {
		t.Errorf("good beside an unreadable line: %v %v", ok, err)
	}
	if _, ok, err := a.Find("nobody"); ok || err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("nobody beside an unreadable line: %v %v", ok, err)
	}
}

// Compile gives every entry, as ParseEntry reads it back, and names
// every bad line, not only the first.
func TestCompile(t *testing.T) {
	want, err := Parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	n, err := Compile(strings.NewReader(sample), func(name, entry string) error {
		got[name] = entry
		return nil
	})
	if err != nil || n != want.Len() || len(got) != n {
		t.Fatalf("%d entries, %v; want %d", n, err, want.Len())
	}
	for name, entry := range got {
		k, ts, err := ParseEntry(entry)
		w, _ := want.Lookup(name)
		if err != nil || k != name || !reflect.DeepEqual(ts, w) {
			t.Errorf("%s: %q reads back as %q %+v %v", name, entry, k, ts, err)
		}
	}
	_, err = Compile(strings.NewReader("a: b\nx y\nc: <d>\ne: f\na: g\n"), func(string, string) error { return nil })
	for _, l := range []string{"line 2", "line 3", "line 5"} {
		if err == nil || !strings.Contains(err.Error(), l) {
			t.Errorf("errors %v lack %s", err, l)
		}
	}
}

func TestNilLookup(t *testing.T) {
	var a *Aliases
	if _, ok := a.Lookup("x"); ok || a.Len() != 0 {
		t.Fatal("nil aliases found something")
	}
}

// FuzzParse: no input panics; names found are lower case and every
// target is well formed.
func FuzzParse(f *testing.F) {
	f.Add(sample)
	f.Add("a: b,\n c\n")
	f.Fuzz(func(t *testing.T, in string) {
		a, err := Parse(strings.NewReader(in))
		if err != nil {
			return
		}
		// Compile takes a file exactly when Parse found nothing bad in
		// it, and gives the same entries.
		compiled := map[string][]Target{}
		_, cerr := Compile(strings.NewReader(in), func(name, entry string) error {
			_, ts, err := ParseEntry(entry)
			if err != nil {
				t.Fatalf("compiled entry %q does not parse: %v", entry, err)
			}
			compiled[name] = ts
			return nil
		})
		if clean := len(a.bad) == 0 && a.unsure == nil; clean != (cerr == nil) {
			t.Fatalf("Parse clean %v, Compile error %v", clean, cerr)
		}
		if cerr == nil && !reflect.DeepEqual(compiled, a.m) {
			t.Fatalf("Compile %+v, Parse %+v", compiled, a.m)
		}
		for name, ts := range a.m {
			if name != LowerASCII(name) || name == "" {
				t.Fatalf("name %q", name)
			}
			if len(ts) == 0 {
				t.Fatalf("%q has no targets", name)
			}
			for _, tg := range ts {
				if tg.Value == "" || strings.ContainsAny(tg.Value, "\n\r\x00") {
					t.Fatalf("%q: target %+v", name, tg)
				}
				if (tg.Kind == Mbox || tg.Kind == Maildir) && tg.Value[0] != '/' {
					t.Fatalf("%q: path %q", name, tg.Value)
				}
			}
			if got, ok := a.Lookup(upperASCII(name)); !ok || !reflect.DeepEqual(got, ts) {
				t.Fatalf("lookup of %q without case failed", name)
			}
		}
	})
}

func upperASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// An SMTPUTF8 local part matches its alias whichever Unicode
// normalisation form the client or the file's author used.
func TestUnicodeNamesCompareInNFC(t *testing.T) {
	const nfc, nfd = "\u00fcn\u00efcode", "u\u0308ni\u0308code"
	for _, c := range []struct{ file, asked string }{{nfc, nfd}, {nfd, nfc}, {nfc, nfc}, {"\u00dcN\u00efcode", "\u00dcn" + "i\u0308CODE"}} {
		a, err := Parse(strings.NewReader(c.file + ": \\" + c.file + ", /var/mail/u\n"))
		if err != nil {
			t.Fatal(err)
		}
		got, ok, err := a.Find(c.asked)
		if err != nil || !ok || got[0] != (Target{User, Fold(c.file)}) {
			t.Errorf("file %+q asked %+q: %v %v %v", c.file, c.asked, got, ok, err)
		}
		if _, ok := a.Lookup(c.asked); !ok {
			t.Errorf("Lookup %+q in %+q: not found", c.asked, c.file)
		}
	}
	// Only ASCII letters fold case: Ü and ü stay different names.
	a, _ := Parse(strings.NewReader("\u00fcser: x@y\n"))
	if _, ok := a.Lookup("\u00dcser"); ok {
		t.Error("non-ASCII case folded")
	}
	if Fold(nfd) != nfc || Fold("\xff\xfeBob") != "\xff\xfebob" {
		t.Errorf("Fold: %+q %+q", Fold(nfd), Fold("\xff\xfeBob"))
	}
}
