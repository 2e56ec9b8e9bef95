package unpacker

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"omail/lib/crashpoint"
	"omail/lib/crashpoint/faulttest"
	"omail/lib/seen"
)

// clientCase is a home with a bundle of two messages for bob, whose
// mbox holds one message already.
func clientCase(t *testing.T) (faulttest.Case, string, string) {
	u, h := setup(t)
	mbox := filepath.Join(h, "mail", "bob")
	os.WriteFile(mbox, []byte("From old@x Thu Jan  1 00:00:00 1970\nSubject: old\n\n"), 0o600)
	file := filepath.Join(h, "in")
	id := writeBundle(t, file, []msg{
		{"a@x", []string{"bob@k"}, "Subject: one\n\n" + strings.Repeat("line\n", 3000)},
		{"b@x", []string{"bob@k"}, "Subject: two\n\nbye\n"},
	})
	return faulttest.Case{Dir: filepath.Join(h, "mail"), Try: func(hk crashpoint.Hook) error {
		u.Crash = hk
		err := u.Unpack(file, "bob")
		if err != nil {
			if _, serr := os.Stat(file); serr != nil {
				t.Errorf("the bundle is gone after a failure: %v", err)
			}
		}
		return err
	}}, mbox, id
}

// A disk error while omail-unpack appends a bundle to a mailbox (in the
// middle of a message, or at the fsync) fails the run temporarily,
// leaves the mailbox as it was and the bundle in place; the re-run
// delivers.
func TestClientFaults(t *testing.T) {
	faulttest.Run(t, func(t *testing.T) faulttest.Case {
		c, _, _ := clientCase(t)
		return c
	}, "mbox-")
}

// A disk error at the seen store's writes or the bundle's removal fails
// the run; the re-run finishes: each message in the mailbox once, the
// bundle recorded and removed.
func TestClientResumeFaults(t *testing.T) {
	faulttest.RunResume(t, func(t *testing.T) faulttest.Case {
		c, mbox, id := clientCase(t)
		h := filepath.Dir(filepath.Dir(mbox))
		c.Done = func(t *testing.T) {
			b, _ := os.ReadFile(mbox)
			for _, s := range []string{"Subject: old\n", "Subject: one\n", "Subject: two\n"} {
				if n := strings.Count(string(b), s); n != 1 {
					t.Errorf("%q %d times in the mailbox", s, n)
				}
			}
			if _, err := os.Stat(filepath.Join(h, seen.Dir, id)); err != nil {
				t.Error("the bundle is not recorded")
			}
			if _, err := os.Stat(filepath.Join(h, "in")); err == nil {
				t.Error("the bundle file is left")
			}
		}
		return c
	}, "seen-", faulttest.Only("unpack-bundle-remove")[0])
}
