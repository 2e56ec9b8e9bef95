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
	"omail/lib/crashpoint"
	"os"
	"path/filepath"
	"strconv"
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
	if err := checkPrefix(prefix); err != nil {
		return "", err
	}
	var f *os.File
	var tmp string
	for attempt := 0; ; attempt++ {
		name = UniqueName()
		tmp = filepath.Join(dir, "tmp", name)
		f, err = createTmp(tmp)
		if err == nil {
			break
		}
		// A clash cannot happen with a working clock and random source,
		// but if it does, a fresh name is the answer, a few times.
		if !errors.Is(err, fs.ErrExist) || attempt == 3 {
			return "", fmt.Errorf("maildir %s: %w", dir, err)
		}
	}
	already, err := write(dir, name, f, prefix, r, nil)
	if err != nil {
		return "", err
	}
	if already {
		// A fresh unique name found in new/ is another writer's file: an error (the delivery defers), never taken for ours.
		return "", fmt.Errorf("maildir %s: %s already in new/", dir, name)
	}
	return name, nil
}

// NameFor is the name of a message file that a delivery chooses before
// writing it, the same at every attempt: SECONDS, then unique (which
// must hold neither '/' nor ':' nor '.'), then this host, as UniqueName's
// are. DeliverNamed writes it, and finds it again after a crash.
func NameFor(seconds int64, unique string) string {
	return strconv.FormatInt(seconds, 10) + "." + unique + "." + hostname
}

// DeliverNamed delivers like Deliver, under a name the caller chose
// (NameFor) that no other message can have, so that a repeated delivery
// can tell it was made before. With check, it first looks for the name
// in new/ and cur/ (where a reader moves it, with ":2,FLAGS" appended)
// and, finding it, writes nothing and reports already. A file in tmp/
// under the name is what a crashed attempt left: written over. hook, if
// not nil, is called at each step with the crash point's name
// (lib/crashpoint).
func DeliverNamed(dir, name string, check bool, prefix []string, r io.Reader, hook crashpoint.Hook) (already bool, err error) {
	if err := checkPrefix(prefix); err != nil {
		// lib/local never puts a line break in a prefix line: a programming error, reported before anything is written.
		return false, err
	}
	if strings.ContainsAny(name, "/:") || name == "" || name[0] == '.' {
		return false, fmt.Errorf("maildir: bad name %q", name)
	}
	if check {
		if found, err := Holds(dir, name); err != nil || found {
			return found, err
		}
	}
	tmp := filepath.Join(dir, "tmp", name)
	f, err := createTmp(tmp)
	if errors.Is(err, fs.ErrExist) {
		// Only an attempt for this very delivery uses the name, and the
		// queue lets one run at a time: this is a crashed one's.
		if err = os.Remove(tmp); err == nil {
			f, err = createTmp(tmp)
		}
	}
	if err != nil {
		return false, fmt.Errorf("maildir %s: %w", dir, err)
	}
	return write(dir, name, f, prefix, r, hook)
}

// Holds reports whether the Maildir dir has a message file called name:
// in new/, or in cur/ as the name itself or followed by ':' (flags).
func Holds(dir, name string) (bool, error) {
	if _, err := os.Lstat(filepath.Join(dir, "new", name)); err == nil {
		return true, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		// new/ unreadable (EACCES, EIO): nothing written, the delivery defers.
		return false, fmt.Errorf("maildir %s: %w", dir, err)
	}
	cur, err := os.Open(filepath.Join(dir, "cur"))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		// cur/ unreadable: as above.
		return false, fmt.Errorf("maildir %s: %w", dir, err)
	}
	defer cur.Close()
	for {
		names, err := cur.Readdirnames(4096)
		for _, n := range names {
			if n == name || strings.HasPrefix(n, name) && n[len(name)] == ':' {
				return true, nil
			}
		}
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			// An I/O error listing cur/: as above.
			return false, fmt.Errorf("maildir %s: cur/: %w", dir, err)
		}
	}
}

func checkPrefix(prefix []string) error {
	for _, p := range prefix {
		if strings.ContainsAny(strings.TrimSuffix(p, "\n"), "\r\n") {
			return fmt.Errorf("maildir: prefix line holds a line break: %q", p)
		}
	}
	return nil
}

func createTmp(tmp string) (*os.File, error) {
	return os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
}

// write writes the message into f, the new file tmp/name of dir, and
// moves it into new/: fsync, link (rename where links are not
// supported), fsync new/, remove the tmp/ name. already is true when
// new/ holds the name: a file gets there only whole and fsynced, so it is
// this delivery, made before.
func write(dir, name string, f *os.File, prefix []string, r io.Reader, hook crashpoint.Hook) (already bool, err error) {
	at := hook.At
	w := hook.Writer("maildir-write", f)
	tmp := filepath.Join(dir, "tmp", name)
	done := false
	defer func() {
		if !done {
			f.Close()
			os.Remove(tmp)
		}
	}()
	at("maildir-created")
	for _, p := range prefix {
		if _, err := io.WriteString(w, strings.TrimSuffix(p, "\n")+"\n"); err != nil {
			// Disk full or I/O error: the deferred cleanup removes tmp/NAME, new/ holds nothing, the delivery defers (as for the io.Copy below, which test/deliver-diskfull reaches).
			return false, fmt.Errorf("maildir %s: %w", dir, err)
		}
	}
	at("maildir-torn")
	if _, err := io.Copy(w, r); err != nil {
		return false, fmt.Errorf("maildir %s: %w", dir, err)
	}
	at("maildir-written")
	if err := hook.Op("maildir-fsync", f.Sync); err != nil {
		// An I/O error: as above, tmp/NAME removed, nothing in new/, the delivery defers.
		return false, fmt.Errorf("maildir %s: fsync: %w", dir, err)
	}
	at("maildir-synced")
	if err := f.Close(); err != nil {
		// A write error reported at close (network file systems): as above.
		done = true
		os.Remove(tmp)
		return false, fmt.Errorf("maildir %s: %w", dir, err)
	}
	done = true
	dst := filepath.Join(dir, "new", name)
	err = hook.Op("maildir-link", func() error {
		err := os.Link(tmp, dst)
		if err == nil || errors.Is(err, fs.ErrExist) {
			return err
		}
		// File systems without hard links (some FUSE and network ones):
		// rename is still atomic.
		if rerr := os.Rename(tmp, dst); rerr != nil {
			// Neither link nor rename works: tmp/NAME removed below, nothing in new/, the delivery defers.
			return fmt.Errorf("link: %v; rename: %w", err, rerr)
		}
		return nil
	})
	if errors.Is(err, fs.ErrExist) {
		os.Remove(tmp)
		return true, nil
	}
	if err != nil {
		os.Remove(tmp)
		return false, fmt.Errorf("maildir %s: %w", dir, err)
	}
	at("maildir-linked")
	if err := hook.Op("maildir-dirsync", func() error { return safefile.SyncDir(filepath.Join(dir, "new")) }); err != nil {
		// The message may or may not survive a crash: do not claim it,
		// and do not leave it for the reader either.
		os.Remove(dst)
		os.Remove(tmp)
		return false, fmt.Errorf("maildir %s: fsync new/: %w", dir, err)
	}
	at("maildir-dirsynced")
	hook.Op("maildir-unlink-tmp", func() error { return os.Remove(tmp) })
	return false, nil
}
