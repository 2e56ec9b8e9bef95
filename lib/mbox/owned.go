package mbox

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"omail/lib/crashpoint"
	"omail/lib/safefile"

	"golang.org/x/sys/unix"
)

// MakeOwned, run as root for a user who may not create files in the
// mail spool (Debian's /var/mail: 2775 root:mail), makes the user's
// mailbox at path one the user can write: created empty, mode 600,
// uid:gid's, when missing; given to uid:gid when root owns it (one an
// earlier root run or an admin made). A mailbox someone else owns is
// left alone: it is theirs to fix. Links are never followed. It says
// what it did (Created, GivenToUser, or "" for nothing), for the log.
func MakeOwned(path string, uid, gid int) (string, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err == nil {
		defer f.Close()
		if err := f.Chown(uid, gid); err != nil {
			// Left empty and root's: the user's delivery cannot open it, and says so.
			return "", fmt.Errorf("mailbox %s: %w", path, err)
		}
		// The name durable before anything is appended (openOrCreate).
		if err := safefile.SyncDir(filepath.Dir(path)); err != nil {
			return "", fmt.Errorf("mailbox %s: %w", path, err)
		}
		return Created, nil
	}
	if !errors.Is(err, fs.ErrExist) {
		// EACCES, EIO: nothing made; the delivery says what it finds.
		return "", fmt.Errorf("mailbox %s: %w", path, err)
	}
	f, err = os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		// A symbolic link (ELOOP) or gone meanwhile: left to the delivery, which refuses a link.
		return "", nil
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	// A file with another name too (a hard link) is not given away: it
	// is not only this mailbox.
	if !ok || !fi.Mode().IsRegular() || st.Uid != 0 || uid == 0 || st.Nlink != 1 {
		return "", nil
	}
	// Mode 600 first: what root made for everyone to read (an admin's
	// touch under umask 022) must not become the user's mail so.
	if err := f.Chmod(0o600); err != nil {
		return "", fmt.Errorf("mailbox %s: %w", path, err)
	}
	if err := f.Chown(uid, gid); err != nil {
		return "", fmt.Errorf("mailbox %s: %w", path, err)
	}
	return GivenToUser, nil
}

// What MakeOwned did.
const (
	Created     = "created for its user"
	GivenToUser = "given from root to its user"
)

// ClearAbandoned, run by a writer who may remove files beside the
// mailbox at path (root), takes over the dotlock there when it was left
// by a dead omail writer (cutting what that writer appended) or is
// older than DotlockStale, as Open would, without waiting and without
// locking for itself: so that a writer who may not remove it (a
// delivery child in a root-owned spool) is not held up by it. A
// mailbox or lock in use is left alone. It reports whether the lock
// is gone now. hook gets the takeover's points (dotlock-takeover-*).
func ClearAbandoned(path string, hook crashpoint.Hook) (bool, error) {
	if _, err := os.Lstat(path + ".lock"); err != nil {
		return false, nil
	}
	if fi, err := os.Lstat(path); err != nil || !fi.Mode().IsRegular() {
		// No mailbox (nothing to cut, and the delivery creates it), a link, a device: left alone.
		return false, nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOFOLLOW|syscall.O_CLOEXEC|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		// Gone or replaced meanwhile: left alone.
		return false, nil
	}
	defer f.Close()
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
		return false, nil // in use: its writer removes its lock, or the next try judges it
	}
	// Length and inode under the lock, as tryDotlock reads them.
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return false, err
	}
	a := &Appender{path: path, f: f, Hook: hook}
	return a.clearAbandoned(path+".lock", st)
}
