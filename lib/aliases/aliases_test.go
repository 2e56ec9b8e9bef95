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

func TestParseErrors(t *testing.T) {
	for _, in := range []string{
		"nocolon\n", " x: y\n", "a: \"b\n", "a:\n", "a: b\na: c\n", "a: :include:/etc/list\n",
		"a: |\n", "a: \\\n", "a: b c\n", "a b: c\n", "a: <b@c>\n", ": b\n", "a: \"x\x01\"\n",
	} {
		if _, err := Parse(strings.NewReader(in)); err == nil {
			t.Errorf("%q: no error", in)
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
