package outbox

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Damaged outbox entries (docs/RELIABILITY.md, "Damaged queue files"):
// Open tells each one from an entry (ErrCorrupt, naming it), so that
// omail-pack moves it to the quarantine (lib/packer) and packs the rest;
// List still names it (it judges no content), a healthy entry beside it
// opens as before, and a Put for the damaged entry's queue id writes
// nothing and fails (a deferral: the queue keeps the message until the
// damaged entry is out of the way), never overwriting it.
func TestDamagedEntries(t *testing.T) {
	const good = "OMAIL-OUTBOX 1\nF a@b\nT c@d\nT e@f\n\nSubject: x\n\nbody\n"
	for _, tc := range []struct {
		name, entry string
	}{
		{"empty", ""},
		{"truncated in the header line", good[:7]},
		{"truncated in the envelope", good[:len("OMAIL-OUTBOX 1\nF a@b\nT c")]},
		{"envelope without its end (blank line)", "OMAIL-OUTBOX 1\nF a@b\nT c@d\n"},
		{"garbage", "\x00\xff garbage \x9f\n\n"},
		{"another version", strings.Replace(good, "OUTBOX 1", "OUTBOX 2", 1)},
		{"no sender line", strings.Replace(good, "F a@b\n", "", 1)},
		{"no recipients", "OMAIL-OUTBOX 1\nF a@b\n\nSubject: x\n\nbody\n"},
		{"bad recipient line", strings.Replace(good, "T e@f", "X e@f", 1)},
		{"empty recipient", strings.Replace(good, "T e@f", "T ", 1)},
		// What a bundle's reader refuses (envelope.CheckAddress): such an
		// entry could never travel.
		{"control character in a recipient", strings.Replace(good, "T e@f", "T e\x01f", 1)},
		{"control character in the sender", strings.Replace(good, "F a@b", "F a\x7fb", 1)},
		{"recipient too long", strings.Replace(good, "T e@f", "T "+strings.Repeat("e", 2000)+"@f", 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := t.TempDir()
			m := msgFile(t, "Subject: y\n\nhealthy\n")
			for _, id := range []string{"1700.5.42.1", "1700.5.42.3"} {
				if err := Put(home, "k1", id, m, "a@b", []string{"c@d"}); err != nil {
					t.Fatal(err)
				}
			}
			const bad = "1700.5.42.2"
			p := filepath.Join(Path(home, "k1"), bad)
			if err := os.WriteFile(p, []byte(tc.entry), 0o640); err != nil {
				t.Fatal(err)
			}
			names, err := List(home, "k1")
			if err != nil || strings.Join(names, ",") != "1700.5.42.1,1700.5.42.2,1700.5.42.3" {
				t.Fatalf("List: %v, %v", names, err)
			}
			for _, n := range names {
				e, err := Open(home, "k1", n)
				if n == bad {
					if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "k1/"+bad) {
						t.Errorf("Open(damaged): %v", err)
					}
					if err == nil {
						e.Close()
					}
					continue
				}
				if err != nil {
					t.Fatalf("Open(%s): %v", n, err)
				}
				b, _ := io.ReadAll(e)
				e.Close()
				if string(b) != "Subject: y\n\nhealthy\n" || e.Sender != "a@b" || strings.Join(e.Rcpts, ",") != "c@d" {
					t.Errorf("%s: %+v %q", n, e, b)
				}
			}
			if err := Put(home, "k1", bad, m, "a@b", []string{"c@d"}); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Put over a damaged entry: %v, want ErrCorrupt", err)
			}
			if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, []byte(tc.entry)) {
				t.Errorf("damaged entry now %q, %v", got, err)
			}
			if names, _ := List(home, "k1"); len(names) != 3 {
				t.Errorf("entries after Put: %v", names)
			}
		})
	}
}
