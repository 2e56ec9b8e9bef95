package senders

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"omail/lib/control"
)

func parse(text string) (*Policy, error) {
	return Parse(control.EntriesOf(strings.Split(text, "\n")))
}

func TestAllows(t *testing.T) {
	p, err := parse("# who may send\nk1:@kiosk1.example\nk1:Amina@Example.ORG\nk1:.villages.example\n*:@ngo.example\nk3:@only.example\n")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		ep, sender string
		yes        bool
	}{
		{"k1", "dana@kiosk1.example", true},
		{"k1", "dana@KIOSK1.example", true},
		{"k1", "dana@sub.kiosk1.example", false}, // @domain is that domain only
		{"k1", "amina@example.org", true},
		{"k1", "other@example.org", false},
		{"k1", "x@a.villages.example", true},
		{"k1", "x@b.a.villages.example", true},
		{"k1", "x@villages.example", false}, // .domain is subdomains only
		{"k1", "x@evilvillages.example", false},
		{"k1", "x@ngo.example", true}, // the * line
		{"k2", "x@ngo.example", true},
		{"k2", "dana@kiosk1.example", false}, // k1's line
		{"k1", "", true},                     // a bounce from an endpoint with lines
		{"k1", "#@[]", true},
		{"k2", "", true}, // the * line lists every endpoint
		{"k1", "nodomain", false},
		{"k1", "@kiosk1.example", false},
		{"k1", "dana@kiosk1.example.", true},
	} {
		if got := p.Allows(c.ep, c.sender); got != c.yes {
			t.Errorf("Allows(%s, %q) = %v", c.ep, c.sender, got)
		}
	}
	p, _ = parse("k1:@kiosk1.example")
	if p.Allows("k2", "") || p.Allows("k2", "a@kiosk1.example") {
		t.Error("an endpoint without lines may send")
	}
}

func TestParseErrors(t *testing.T) {
	for text, want := range map[string]string{
		"k1@kiosk.example":    "line 1: want",
		"\nk1:kiosk.example":  "line 2: \"kiosk.example\" is not",
		"k1:@":                "line 1: \"@\" is not",
		"k1:.":                "line 1: \".\" is not",
		"k1:a@b@c":            "line 1:",
		"k1:@a..b":            "line 1:",
		"k1:":                 "line 1:",
		".k:@a.example":       "line 1: endpoint \".k\" starts with a dot",
		"a b:@a.example":      "line 1: endpoint",
		"k1:@ok.example\nk1:": "line 2:",
	} {
		_, err := parse(text)
		if err == nil || !strings.Contains(err.Error(), "control file ocmpsenders: "+want) {
			t.Errorf("%q: %v, want %q", text, err, want)
		}
	}
}

func TestRead(t *testing.T) {
	d := &control.Dir{Path: t.TempDir()}
	if p, ok, err := Read(d); p != nil || ok || err != nil {
		t.Errorf("no file: %v %v %v", p, ok, err)
	}
	os.WriteFile(filepath.Join(d.Path, File), []byte("k:@x.example\n"), 0o644)
	if p, ok, err := Read(d); !ok || err != nil || !p.Allows("k", "a@x.example") {
		t.Errorf("file: %v %v %v", p, ok, err)
	}
	os.WriteFile(filepath.Join(d.Path, File), []byte("k\n"), 0o644)
	if _, ok, err := Read(d); ok || err == nil {
		t.Errorf("bad file: %v %v", ok, err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("k1:@kiosk1.example\nk1:amina@example.org\n*:.villages.example", "amina@example.org")
	f.Add("k1:@x", "")
	f.Fuzz(func(t *testing.T, text, sender string) {
		p, err := parse(text)
		if err != nil {
			if !strings.Contains(err.Error(), "ocmpsenders: line ") {
				t.Fatalf("error without its line: %v", err)
			}
			return
		}
		// An endpoint named by no line, with no * line, sends nothing.
		if !strings.ContainsAny(text, "*") && !strings.Contains(text, "never-listed") && p.Allows("never-listed", sender) {
			t.Fatalf("%q lets an unlisted endpoint send as %q", text, sender)
		}
	})
}
