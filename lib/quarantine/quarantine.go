// Package quarantine sets damaged files aside in $OMAIL_HOME/quarantine/
// for a person to look at: a bundle omail-unpack cannot read, an outbox
// entry omail-pack cannot pack. Nothing there is delivered or deleted by
// omail, nor replaced: a name already taken gets a suffix.
package quarantine

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"omail/lib/crashpoint"
	"omail/lib/safefile"
)

// Dir is the quarantine directory under OMAIL_HOME.
const Dir = "quarantine"

// maxTries bounds the names tried: name, name.2, ... name.1000.
const maxTries = 1000

// Move moves the file at from into home's quarantine under name,
// durably, and returns its new path. It never replaces a file there:
// when name is taken, the file gets name.2, name.3, and so on. Across
// file systems (OCMP's download directory need not be on OMAIL_HOME's)
// it copies, syncs and then removes the original.
func Move(home, from, name string) (string, error) {
	q := filepath.Join(home, Dir)
	if err := os.MkdirAll(q, 0o750); err != nil {
		return "", err
	}
	h := Crash()
	to := filepath.Join(q, name)
	err := h.Op("quarantine-rename", func() error {
		var err error
		to, err = free(q, name, func(to string) error { return renameNoReplace(from, to) })
		return err
	})
	if !errors.Is(err, syscall.EXDEV) {
		return to, err
	}
	in, err := os.Open(from)
	if err != nil {
		return to, err
	}
	defer in.Close()
	if err := h.Op("quarantine-copy", func() error { to, err = copyNoReplace(q, name, in); return err }); err != nil {
		return to, err
	}
	return to, h.Op("quarantine-unlink", func() error { return safefile.Remove(from) })
}

// free calls place with the path name, then name.2, name.3... in q
// while it fails because the name is taken, and returns the path it
// took.
func free(q, name string, place func(to string) error) (string, error) {
	for i := 1; i <= maxTries; i++ {
		to := filepath.Join(q, name)
		if i > 1 {
			to = fmt.Sprintf("%s.%d", to, i)
		}
		err := place(to)
		if !errors.Is(err, fs.ErrExist) {
			return to, err
		}
	}
	return filepath.Join(q, name), fmt.Errorf("quarantine: %s and %d names after it are taken", name, maxTries-1)
}

// renameNoReplace moves from to to, failing with an error that is
// fs.ErrExist when to exists, and makes the move durable (both
// directories fsynced, the destination's first, as safefile.Rename). A
// file system without RENAME_NOREPLACE gets a link and an unlink: a
// crash between them leaves the file in both places, never in none.
func renameNoReplace(from, to string) error {
	err := unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		if err = os.Link(from, to); err == nil {
			if err := safefile.SyncDir(filepath.Dir(to)); err != nil {
				return err
			}
			return safefile.Remove(from)
		}
	} else if err != nil {
		err = &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	if err != nil {
		return err
	}
	if err := safefile.SyncDir(filepath.Dir(to)); err != nil {
		return err
	}
	return safefile.SyncDir(filepath.Dir(from))
}

// copyNoReplace copies r into q under name (or the first free name
// after it, as free): to a temporary file, fsynced, then linked to the
// name, which link never replaces, and the directory fsynced.
func copyNoReplace(q, name string, r io.Reader) (string, error) {
	tmp, err := os.CreateTemp(q, ".copy-")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	_, err = io.Copy(tmp, r)
	if err == nil {
		err = tmp.Chmod(0o640)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", err
	}
	to, err := free(q, name, func(to string) error { return os.Link(tmp.Name(), to) })
	if err != nil {
		return to, err
	}
	os.Remove(tmp.Name())
	return to, safefile.SyncDir(q)
}

// Crash returns the test hooks at Move's file operations: the process's
// (crashpoint.Process), as omail-pack and omail-unpack call Move deep
// inside. Tests replace it.
var Crash = crashpoint.Process
