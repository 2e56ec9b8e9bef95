// Package quarantine sets damaged files aside in $OMAIL_HOME/quarantine/
// for a person to look at: a bundle omail-unpack cannot read, an outbox
// entry omail-pack cannot pack. Nothing there is delivered or deleted by
// omail.
package quarantine

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"

	"omail/lib/safefile"
)

// Dir is the quarantine directory under OMAIL_HOME.
const Dir = "quarantine"

// Move moves the file at from into home's quarantine under name, durably,
// and returns its new path. Across file systems (OCMP's download
// directory need not be on OMAIL_HOME's) it copies, syncs and then
// removes the original.
func Move(home, from, name string) (string, error) {
	q := filepath.Join(home, Dir)
	if err := os.MkdirAll(q, 0o750); err != nil {
		return "", err
	}
	to := filepath.Join(q, name)
	err := safefile.Rename(from, to)
	if !errors.Is(err, syscall.EXDEV) {
		return to, err
	}
	in, err := os.Open(from)
	if err != nil {
		return to, err
	}
	defer in.Close()
	if _, err := safefile.WriteFrom(to, in, 0o640); err != nil {
		return to, err
	}
	return to, safefile.Remove(from)
}
