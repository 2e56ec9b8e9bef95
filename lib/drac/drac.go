// Package drac is relay after POP/IMAP ("dynamic relay authorisation
// control"): a POP or IMAP server's post-login hook records the
// address a user logged in from (omail-smtpd -drac IP), and for
// dracexpiry seconds after that omail-smtpd lets that address relay.
//
// A record is an empty file under $OMAIL_HOME/drac/ named after the
// address in its one canonical text form; its mtime is the login time.
// The name is never taken from raw input: the argument is parsed as an
// IP address and the file is named by the parsed address's String, so
// "127.000.0.1", "::FFFF:127.0.0.1" or "../x" cannot become a path of
// their own.
package drac

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"omail/lib/control"
	"omail/lib/safefile"
)

// DirName is the records' directory under $OMAIL_HOME.
const DirName = "drac"

// DefaultExpiry is dracexpiry's default: 1800 seconds, as the original
// DRAC daemon's.
const DefaultExpiry = 1800 * time.Second

// ControlFile is the control file holding the expiry in seconds.
const ControlFile = "dracexpiry"

// ErrNotIP is an argument that is not an IP address.
var ErrNotIP = errors.New("not an IP address")

// ParseIP reads an IPv4 or IPv6 address in any of its usual textual
// forms and returns it in canonical form: an IPv4 address mapped into
// IPv6 (a dual-stack listener's view) becomes the IPv4 address, and a
// zone (fe80::1%eth0) is refused, since it names no remote host.
func ParseIP(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" || !a.IsValid() {
		return netip.Addr{}, fmt.Errorf("%q: %w", s, ErrNotIP)
	}
	return a.Unmap(), nil
}

// Table is the records' directory and how long a record lasts.
type Table struct {
	Dir    string
	Expiry time.Duration
}

// Load returns the table of the home whose control directory is ctl,
// with the expiry from control/dracexpiry.
func Load(ctl *control.Dir) (Table, error) {
	v, err := ctl.Line(ControlFile)
	if err != nil {
		return Table{}, err
	}
	return New(filepath.Dir(ctl.Path), v)
}

// New returns the table under home, the expiry given as dracexpiry's
// text: seconds, "" for the default (1800), 0 to turn DRAC off.
func New(home, expiry string) (Table, error) {
	t := Table{Dir: filepath.Join(home, DirName), Expiry: DefaultExpiry}
	if expiry != "" {
		n, err := strconv.ParseInt(expiry, 10, 64)
		if err != nil || n < 0 || n > 1<<31 {
			return t, &control.Error{File: ControlFile, Err: fmt.Errorf("not a number of seconds: %q", expiry)}
		}
		t.Expiry = time.Duration(n) * time.Second
	}
	return t, nil
}

// fresh reports whether a record written at mtime still holds at now.
// A time in the future (a clock set back, a careless touch) holds for
// no longer than Expiry either, so no record lasts for ever.
func (t Table) fresh(mtime, now time.Time) bool {
	age := now.Sub(mtime)
	return age < t.Expiry && age > -t.Expiry
}

// Allows reports whether ip (TCPREMOTEIP) has a record that has not
// expired at now. Anything unreadable or odd is a no: this only ever
// grants relaying.
func (t Table) Allows(ip string, now time.Time) bool {
	if t.Dir == "" || t.Expiry <= 0 {
		return false
	}
	a, err := ParseIP(ip)
	if err != nil {
		return false
	}
	fi, err := os.Lstat(filepath.Join(t.Dir, a.String()))
	if err != nil || !fi.Mode().IsRegular() {
		return false
	}
	return t.fresh(fi.ModTime(), now)
}

// Record notes a login from ip at now, durably, and then removes the
// records that have expired (omail-smtpd only ever reads them, and may
// not be allowed to write here). It returns how many it removed.
//
// The record is written as a new file and renamed into place, so that
// several hook users sharing the directory by group permission can
// each replace a record another wrote (setting the mtime of another
// user's file is not allowed, replacing it is).
func (t Table) Record(ip netip.Addr, now time.Time) (int, error) {
	if !ip.IsValid() || ip.Zone() != "" {
		return 0, ErrNotIP
	}
	if err := os.MkdirAll(t.Dir, 0o755); err != nil {
		return 0, err
	}
	name := filepath.Join(t.Dir, ip.Unmap().String())
	tmp := filepath.Join(t.Dir, fmt.Sprintf(".tmp.%d.%d", os.Getpid(), now.UnixNano()))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return 0, err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chtimes(tmp, now, now)
	}
	if err == nil {
		// Renamed without the lock if someone holds it too long: a
		// record that a prune then removes costs a login again, a
		// record not written costs the same and says nothing.
		err = t.locked(true, func() error { return os.Rename(tmp, name) })
	}
	if err != nil {
		os.Remove(tmp)
		return 0, err
	}
	if err := safefile.SyncDir(t.Dir); err != nil {
		return 0, err
	}
	return t.Prune(now)
}

// Prune removes expired records: each -drac does, and omail-deliver's
// hourly sweep, so that records of logins that never come back do not
// pile up. Only names that are an address in canonical form are
// records: anything else someone put here is left.
//
// It holds the directory's lock (locked) while it looks and removes,
// so that a fresh record Record renames over an expired one between
// Prune's stat and its remove is not the one removed.
//
// If the lock cannot be had in lockWait (anyone who can read drac/ can
// hold it), this prune is skipped: expired records are refused anyway
// (Allows looks at their age), only left on disk until a later one.
func (t Table) Prune(now time.Time) (n int, err error) {
	err = t.locked(false, func() error {
		n, err = t.prune(now)
		return err
	})
	return n, err
}

// prune is Prune under the lock.
func (t Table) prune(now time.Time) (int, error) {
	ents, err := os.ReadDir(t.Dir)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range ents {
		name := e.Name()
		// A record, or a temporary file a killed -drac left behind.
		if a, err := ParseIP(name); (err != nil || a.String() != name) && !strings.HasPrefix(name, ".tmp.") {
			continue
		}
		fi, err := e.Info()
		if err != nil || !fi.Mode().IsRegular() || t.fresh(fi.ModTime(), now) {
			continue
		}
		if err := os.Remove(filepath.Join(t.Dir, name)); err == nil {
			n++
		} else if !os.IsNotExist(err) {
			return n, err
		}
	}
	return n, nil
}

// lockWait is how long locked waits for the directory's lock. Prune
// holds it for a listing and a few removes; whoever holds it longer is
// not one of us (anyone who can read drac/ can take it), and must not
// hang the POP/IMAP server's logins or omail-deliver.
var lockWait = 2 * time.Second

// locked runs f holding an exclusive flock on the records' directory
// itself, which Prune and Record's rename take. Readers (Allows) take
// no lock: a rename replaces a record at once, and only Prune removes
// one. Everyone who writes here can read the directory, so no lock
// file is needed, and none is left for another hook user to trip on.
// When the lock is not had within lockWait, f runs anyway if anyway is
// set, and is skipped (nil) if not.
func (t Table) locked(anyway bool, f func() error) error {
	d, err := os.Open(t.Dir)
	if err != nil {
		return err
	}
	defer d.Close() // releases the lock
	deadline := time.Now().Add(lockWait)
	for {
		err = unix.Flock(int(d.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return f()
		}
		if err != unix.EINTR && err != unix.EWOULDBLOCK {
			return &os.PathError{Op: "flock", Path: t.Dir, Err: err}
		}
		if time.Now().After(deadline) {
			if anyway {
				return f()
			}
			return nil
		}
		time.Sleep(10 * time.Millisecond) // polling: flock has no timeout
	}
}
