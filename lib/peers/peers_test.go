package peers

import (
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"omail/lib/control"
	"omail/lib/ocmpkey"
)

func key(t testing.TB) (ed25519.PublicKey, string) {
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return pub, ocmpkey.FormatPublic(pub)
}

func parse(text string) (*Peers, error) {
	return Parse(control.EntriesOf(strings.Split(text, "\n")))
}

func TestAccepts(t *testing.T) {
	k1, s1 := key(t)
	k2, s2 := key(t)
	k3, s3 := key(t)
	stranger, _ := key(t)
	p, err := parse("# kiosks\nkiosk1 " + s1 + "\nkiosk1  " + s2 + "\nold -\n* " + s3 + "\n")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		ep  string
		k   ed25519.PublicKey
		yes bool
	}{
		{"kiosk1", k1, true},
		{"kiosk1", k2, true}, // rotation: both keys
		{"kiosk1", k3, true}, // listed for every endpoint
		{"kiosk1", nil, false},
		{"kiosk1", stranger, false},
		{"kiosk2", k1, false}, // another endpoint's key
		{"kiosk2", k3, true},
		{"old", nil, true},
		{"old", stranger, false},
		{"other", nil, false},
	} {
		if got := p.Accepts(c.ep, c.k); got != c.yes {
			t.Errorf("Accepts(%s, %v) = %v", c.ep, c.k != nil, got)
		}
	}
	// Keys: the candidates of a version 3 bundle's key id, the
	// endpoint's own first; each is one Accepts takes.
	for ep, want := range map[string][]ed25519.PublicKey{"kiosk1": {k1, k2, k3}, "kiosk2": {k3}, "old": {k3}} {
		got := p.Keys(ep)
		if len(got) != len(want) {
			t.Fatalf("Keys(%s): %d keys, want %d", ep, len(got), len(want))
		}
		for i := range want {
			if !got[i].Equal(want[i]) || !p.Accepts(ep, got[i]) {
				t.Errorf("Keys(%s)[%d] = %x, want %x", ep, i, got[i], want[i])
			}
		}
		got[0] = stranger // the caller's copy
	}
	if p.Accepts("kiosk1", stranger) || !p.Keys("kiosk1")[0].Equal(k1) {
		t.Error("changing what Keys returned changed the peers")
	}
	if p, _ := parse("old -"); len(p.Keys("old")) != 0 {
		t.Error("Keys of an endpoint with no key line is not empty")
	}
	if p, _ := parse("* -"); !p.Accepts("x", nil) {
		t.Error("\"* -\" refuses an unsigned bundle")
	}
	if p, _ := parse(""); p.Accepts("x", nil) || p.Accepts("x", k1) {
		t.Error("an empty file accepts something")
	}
}

func TestParseErrors(t *testing.T) {
	_, s1 := key(t)
	for text, want := range map[string]string{
		"kiosk1":                       "line 1: want",
		"\n\nkiosk1 " + s1 + " extra":  "line 3: want",
		"kiosk1 ed25519:AAAA":          "line 1: \"ed25519:AAAA\" is not 32 bytes",
		"kiosk1 rsa:AAAA":              "line 1: \"rsa:AAAA\" is not a public key",
		"# c\n.hidden -":               "line 2: endpoint \".hidden\" starts with a dot",
		"kiosk1 +":                     "line 1: \"+\" is not a public key",
		"kiosk1 " + s1 + "\nkiosk2 --": "line 2:",
	} {
		_, err := parse(text)
		if err == nil || !strings.Contains(err.Error(), "control file ocmppeers: "+want) {
			t.Errorf("%q: %v, want %q", text, err, want)
		}
	}
}

func TestRead(t *testing.T) {
	d := &control.Dir{Path: t.TempDir()}
	if p, ok, err := Read(d); p != nil || ok || err != nil {
		t.Errorf("no file: %v %v %v", p, ok, err)
	}
	os.WriteFile(filepath.Join(d.Path, File), []byte("k -\n"), 0o644)
	if p, ok, err := Read(d); !ok || err != nil || !p.Accepts("k", nil) {
		t.Errorf("file: %v %v %v", p, ok, err)
	}
	os.WriteFile(filepath.Join(d.Path, File), []byte("k\n"), 0o644)
	if _, ok, err := Read(d); ok || err == nil {
		t.Errorf("bad file: %v %v", ok, err)
	}
}

func FuzzParse(f *testing.F) {
	_, s1 := key(f)
	f.Add("kiosk1 " + s1 + "\nold -\n* " + s1)
	f.Add("# comment\n\nk ed25519:AAAA")
	f.Fuzz(func(t *testing.T, text string) {
		p, err := parse(text)
		if err != nil {
			if !strings.Contains(err.Error(), "ocmppeers: line ") {
				t.Fatalf("error without its line: %v", err)
			}
			return
		}
		// Whatever parsed, a key nobody listed is never accepted.
		stranger, _, _ := ed25519.GenerateKey(nil)
		for _, ep := range []string{"kiosk1", "old", "*", "x"} {
			if p.Accepts(ep, stranger) {
				t.Fatalf("%q accepts an unknown key for %s", text, ep)
			}
		}
	})
}
