package mbox

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"omail/lib/crashpoint"
	"omail/lib/crashpoint/faulttest"
)

// A disk error while a message is appended (in the middle of its bytes,
// or at the fsync) fails the delivery and cuts the mailbox back to the
// byte; the next attempt appends.
func TestAppendFaults(t *testing.T) {
	faulttest.Run(t, func(t *testing.T) faulttest.Case {
		dir := t.TempDir()
		path := filepath.Join(dir, "mbox")
		os.WriteFile(path, []byte("From a@b Thu Jan  1 00:00:00 1970\nSubject: before\n\n"), 0o600)
		return faulttest.Case{Dir: dir, Try: func(h crashpoint.Hook) error {
			a, err := Open(path)
			if err != nil {
				return err
			}
			a.Hook = h
			if err := a.Add("s@x", []string{"Delivered-To: u"}, strings.NewReader(strings.Repeat("From line\n", 20000)), time.Unix(0, 0)); err != nil {
				a.Abort()
				return err
			}
			return a.Commit()
		}}
	}, "mbox-")
}
