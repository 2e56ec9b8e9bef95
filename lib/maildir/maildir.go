// Package maildir delivers a message into a Maildir with qmail's
// protocol: write it under tmp/ with a name nobody else can be using,
// fsync it, link it into new/, fsync new/, remove the tmp/ name. A
// reader never sees a partial message in new/.
//
// Names follow qmail and Dovecot: "SECONDS.MMICROSPPIDQCOUNTRRANDOM.HOST",
// e.g. "1764032705.M123456P4242Q3R9f1c2a7b0d3e5a11.kiosk". The
// microseconds, pid and a per-process counter make a name unique among
// deliveries on one host; 64 random bits make it unique even when pids
// are reused within a microsecond (containers, several hosts sharing a
// Maildir over NFS). '/' and ':' in the host name are written as \057
// and \072, as Maildir readers expect.
package maildir

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"omail/lib/safefile"
)

var counter atomic.Uint64

// Now is the clock; tests may replace it.
var Now = time.Now

// hostname is computed once; a Maildir name only needs to tell hosts apart.
var hostname = func() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "localhost"
	}
	h = strings.ReplaceAll(h, "/", `\057`)
	return strings.ReplaceAll(h, ":", `\072`)
}()

// UniqueName returns a new name for a message file.
func UniqueName() string {
	var r [8]byte
	rand.Read(r[:]) // crypto/rand.Read never fails on Linux
	t := Now()
	return fmt.Sprintf("%d.M%06dP%dQ%dR%s.%s", t.Unix(), t.Nanosecond()/1000, os.Getpid(),
		counter.Add(1), hex.EncodeToString(r[:]), hostname)
}

// Deliver writes the prefix lines (each given a "\n" if it lacks one)
// and then the message from r into the Maildir dir, and returns the
// file's name in dir/new. The Maildir must exist; a missing tmp/ or new/
// is an error (for the caller a temporary one, as in qmail).
func Deliver(dir string, prefix []string, r io.Reader) (name string, err error) {
	for _, p := range prefix {
		if strings.ContainsAny(strings.TrimSuffix(p, "\n"), "\r\n") {
			return "", fmt.Errorf("maildir: prefix line holds a line break: %q", p)
		}
	}
	var f *os.File
	var tmp string
	for attempt := 0; ; attempt++ {
		name = UniqueName()
		tmp = filepath.Join(dir, "tmp", name)
		f, err = os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
		if err == nil {
			break
		}
		// A clash cannot happen with a working clock and random source,
		// but if it does, a fresh name is the answer, a few times.
		if !errors.Is(err, fs.ErrExist) || attempt == 3 {
			return "", fmt.Errorf("maildir %s: %w", dir, err)
		}
	}
	done := false
	defer func() {
		if !done {
			f.Close()
			os.Remove(tmp)
		}
	}()
	for _, p := range prefix {
		if _, err := io.WriteString(f, strings.TrimSuffix(p, "\n")+"\n"); err != nil {
			return "", fmt.Errorf("maildir %s: %w", dir, err)
		}
	}
	if _, err := io.Copy(f, r); err != nil {
		return "", fmt.Errorf("maildir %s: %w", dir, err)
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("maildir %s: fsync: %w", dir, err)
	}
	if err := f.Close(); err != nil {
		done = true
		os.Remove(tmp)
		return "", fmt.Errorf("maildir %s: %w", dir, err)
	}
	done = true
	dst := filepath.Join(dir, "new", name)
	if err := os.Link(tmp, dst); err != nil {
		if errors.Is(err, fs.ErrExist) {
			os.Remove(tmp)
			return "", fmt.Errorf("maildir %s: %s already in new/", dir, name)
		}
		// File systems without hard links (some FUSE and network ones):
		// rename is still atomic.
		if rerr := os.Rename(tmp, dst); rerr != nil {
			os.Remove(tmp)
			return "", fmt.Errorf("maildir %s: link: %v; rename: %w", dir, err, rerr)
		}
	}
	if err := safefile.SyncDir(filepath.Join(dir, "new")); err != nil {
		// The message may or may not survive a crash: do not claim it,
		// and do not leave it for the reader either.
		os.Remove(dst)
		os.Remove(tmp)
		return "", fmt.Errorf("maildir %s: fsync new/: %w", dir, err)
	}
	os.Remove(tmp)
	return name, nil
}
