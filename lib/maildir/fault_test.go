package maildir

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"omail/lib/crashpoint"
	"omail/lib/crashpoint/faulttest"
)

// A disk error at any write or file operation of a delivery fails it,
// leaves no file in new/ (nor tmp/), and the next attempt delivers.
func TestDeliverFaults(t *testing.T) {
	faulttest.Run(t, func(t *testing.T) faulttest.Case {
		dir := newMaildir(t)
		os.WriteFile(filepath.Join(dir, "new", "there-before"), []byte("old\n"), 0o600)
		return faulttest.Case{Dir: dir, Try: func(h crashpoint.Hook) error {
			_, err := DeliverNamed(dir, NameFor(1, "E1"), true, []string{"Delivered-To: x"}, strings.NewReader(strings.Repeat("line\n", 20000)), h)
			return err
		}}
	}, "maildir-")
}
