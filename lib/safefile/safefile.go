// Package safefile writes files so that after a crash or power loss a
// reader finds either the old contents or the new, never a mixture, and
// so that a successful return means the data is on disk: write a
// temporary file, fsync it, rename it into place, fsync the directory.
//
// renameio does the first three steps; it does not fsync the directory
// after its rename, which is what makes the rename itself durable, so
// every helper here does that too.
package safefile

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/google/renameio/v2"
	"golang.org/x/sys/unix"
)

// SyncDir fsyncs a directory, making the entries created, renamed or
// removed in it before the call durable. Concurrent callers in one
// process share fsyncs (group commit, groupsync.go).
//
// On a file system where that is not enough (ext2, or ext3/4 without a
// journal: journal.go), it runs syncfs instead, shared by every caller
// in the process whose directory is on that file system.
func SyncDir(dir string) error {
	if fs, yes := needsSyncfs(dir); yes {
		return syncShared(fs, func() error { return syncfsOf(dir, fs) })
	}
	return syncShared(dir, func() error { return syncDir(dir) })
}

// SyncDirEntries makes durable the entries made in dir whose files are
// durable already: removals, and new names (links) of files committed
// before. The directory's fsync writes the name's removal or presence on
// every file system, so unlike SyncDir it never runs syncfs (journal.go);
// what a removal frees is left to writeback, as anyone's unlink is.
// Concurrent callers share fsyncs, per directory.
func SyncDirEntries(dir string) error {
	return syncShared(dir, func() error { return syncDir(dir) })
}

// SyncDirOf is SyncDir for a directory open as d, for a caller that
// reaches its directories by descriptor rather than by path (so that
// nobody can swap a name on the way for a link): the directory's fsync,
// or syncfs on a file system where that is not enough (journal.go).
// Concurrent callers share fsyncs per directory, and a syncfs with
// SyncDir's callers on the same file system.
func SyncDirOf(d *os.File) error {
	fd := int(d.Fd())
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &os.PathError{Op: "fstat", Path: d.Name(), Err: err}
	}
	dev := uint64(st.Dev)
	if fs, yes := fsKind(dev, func(s *unix.Statfs_t) error { return unix.Fstatfs(fd, s) }); yes {
		return syncShared(fs, func() error { return syncfsFile(d) })
	}
	// Keyed by the directory itself, never by a path: two names may
	// reach one directory, and one name two directories.
	return syncShared(fmt.Sprintf("\x00dir:%d:%d", dev, st.Ino), d.Sync)
}

// syncfsFile is one syncfs of the file system holding d; tests count
// its calls.
var syncfsFile = func(d *os.File) error {
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		return &os.PathError{Op: "syncfs", Path: d.Name(), Err: err}
	}
	return nil
}

// syncDir is one fsync of a directory.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// File is a file being written that appears at its path, whole, on Commit.
type File struct {
	*renameio.PendingFile
	path string
}

// Create starts writing path. The temporary file lives in the same
// directory, so the rename stays within one file system.
func Create(path string, perm os.FileMode) (*File, error) {
	pf, err := renameio.NewPendingFile(path, renameio.WithTempDir(filepath.Dir(path)), renameio.WithStaticPermissions(perm))
	if err != nil {
		return nil, err
	}
	return &File{PendingFile: pf, path: path}, nil
}

// Commit fsyncs the file, renames it into place and fsyncs the directory.
// Only when it returns nil is the new file durable.
func (f *File) Commit() error {
	if err := f.CloseAtomicallyReplace(); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(f.path))
}

// Abort removes the temporary file; after Commit it does nothing.
func (f *File) Abort() { f.Cleanup() }

// WriteFile durably replaces path with data.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	f, err := Create(path, perm)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := f.Write(data); err != nil {
		return err
	}
	return f.Commit()
}

// WriteFrom durably replaces path with everything read from r.
func WriteFrom(path string, r io.Reader, perm os.FileMode) (int64, error) {
	f, err := Create(path, perm)
	if err != nil {
		return 0, err
	}
	defer f.Abort()
	n, err := io.Copy(f, r)
	if err != nil {
		return n, err
	}
	return n, f.Commit()
}

// Rename moves a file to another name durably: both directories are
// fsynced, the destination's first, so that a crash in between leaves the
// file in at least one place.
func Rename(from, to string) error {
	if err := os.Rename(from, to); err != nil {
		return err
	}
	if err := SyncDir(filepath.Dir(to)); err != nil {
		return err
	}
	if filepath.Dir(from) != filepath.Dir(to) {
		return SyncDir(filepath.Dir(from))
	}
	return nil
}

// Remove deletes a file and fsyncs its directory.
func Remove(path string) error {
	if err := os.Remove(path); err != nil {
		return err
	}
	return SyncDirEntries(filepath.Dir(path))
}

// ReadSecret reads a file that holds a secret (a private key): it must
// be a regular file, not a symbolic link, that nobody but its owner may
// read, so that a leak is mended rather than used; and it holds at most
// max bytes, so that a wrong file named there is refused, not read
// whole.
func ReadSecret(path string, max int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s: mode %04o: readable by others; chmod 600 it", path, fi.Mode().Perm())
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: over %d bytes, not a key", path, max)
	}
	return b, nil
}
