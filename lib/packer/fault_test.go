package packer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"omail/lib/crashpoint"
	"omail/lib/crashpoint/faulttest"
	"omail/lib/mbox"
	"omail/lib/outbox"
)

// A disk error while a bundle is written, synced or journalled fails
// the pass and leaves everything as it was (no half bundle in upload/,
// the outbox entries or the spool mbox untouched); the next pass packs.
// An outbox and a spool mbox, each on its own.
func TestPackFaults(t *testing.T) {
	for _, spool := range []bool{false, true} {
		journal := "pack-journal-write"
		if spool {
			journal = "pack-mbox-journal-write"
		}
		t.Run(journal, func(t *testing.T) {
			faulttest.Run(t, func(t *testing.T) faulttest.Case { return packCase(t, spool) },
				faulttest.Only("pack-bundle-write", "pack-bundle-fsync", "pack-bundle-dirsync", journal)...)
		})
	}
}

// packCase is a home with mail to pack, in k1's outbox or bob's spool
// mbox, after a first pass made the directories.
func packCase(t *testing.T, spool bool) faulttest.Case {
	p, h := setup(t)
	os.WriteFile(filepath.Join(h, "control", "proxyscanmail"), []byte("1\n"), 0o644)
	add := func(id string) {
		msg := filepath.Join(h, "m"+id)
		os.WriteFile(msg, []byte("Subject: "+id+"\n\n"+strings.Repeat("body\n", 5000)), 0o644)
		if !spool {
			if err := outbox.Put(h, "k1", id, msg, "a@b", []string{"c@d"}); err != nil {
				t.Fatal(err)
			}
			return
		}
		a, err := mbox.Open(filepath.Join(h, "spool", "bob"))
		if err != nil {
			t.Fatal(err)
		}
		a.Add("s@x", nil, strings.NewReader("Subject: y\n\nspooled "+id+"\n"), time.Unix(0, 0))
		if err := a.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	add("1.2.3.4")
	if err := p.Pass(); err != nil {
		t.Fatal(err)
	}
	add("1.2.3.5")
	ep := "k1"
	if spool {
		ep = "bob"
	}
	return faulttest.Case{Dir: h, Try: func(hk crashpoint.Hook) error {
		p.Crash = hk
		err := p.Pass()
		if err == nil && hk == nil {
			if got := readBundles(t, h, ep); len(got) != 2 {
				t.Errorf("%s's bundles hold %d messages, want 2", ep, len(got))
			}
		}
		return err
	}}
}

// A disk error after the journal fails the pass; the next pass finishes
// from the journal: every message in exactly one bundle, the outbox or
// the spool mbox emptied, the journal gone.
func TestPackResumeFaults(t *testing.T) {
	for _, spool := range []bool{false, true} {
		points := faulttest.Only("pack-publish-rename", "pack-publish-dirsync", "pack-outbox-remove", "pack-journal-remove")
		ep, journal := "k1", ".journal"
		if spool {
			points = faulttest.Only("pack-publish-rename", "pack-publish-dirsync", "pack-mbox-truncate", "pack-mbox-fsync", "pack-mbox-journal-remove")
			ep, journal = "bob", ".mbox-journal"
		}
		t.Run(ep, func(t *testing.T) {
			faulttest.RunResume(t, func(t *testing.T) faulttest.Case {
				c := packCase(t, spool)
				h := c.Dir
				c.Done = func(t *testing.T) {
					if got := readBundles(t, h, ep); len(got) != 2 || got[0] == got[1] {
						t.Errorf("%s's bundles hold %d messages, want 2 different ones", ep, len(got))
					}
					if names, _ := outbox.List(h, "k1"); len(names) != 0 {
						t.Errorf("outbox left: %q", names)
					}
					if b, _ := os.ReadFile(filepath.Join(h, "spool", "bob")); len(b) != 0 {
						t.Errorf("spool mbox left: %d bytes", len(b))
					}
					if _, err := os.Stat(filepath.Join(outbox.Path(h, ep), journal)); err == nil {
						t.Error("journal left")
					}
				}
				return c
			}, points...)
		})
	}
}
