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

	"omail/lib/crashpoint"
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
	h := Crash()
	err := h.Op("quarantine-rename", func() error { return safefile.Rename(from, to) })
	if !errors.Is(err, syscall.EXDEV) {
		return to, err
	}
	in, err := os.Open(from)
	if err != nil {
		return to, err
	}
	defer in.Close()
	if err := h.Op("quarantine-copy", func() error { _, err := safefile.WriteFrom(to, in, 0o640); return err }); err != nil {
		return to, err
	}
	return to, h.Op("quarantine-unlink", func() error { return safefile.Remove(from) })
}

// Crash returns the test hooks at Move's file operations: the process's
// (crashpoint.Process), as omail-pack and omail-unpack call Move deep
// inside. Tests replace it.
var Crash = crashpoint.Process
