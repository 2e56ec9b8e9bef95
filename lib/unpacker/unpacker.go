// Package unpacker is omail-unpack's work, the OCMP hooks: it reads a
// bundle and delivers its messages, into the queue (the proxy hook) or
// into one user's mailbox (the client hook). lib/unpackcmd is the command
// around it; docs/omail-unpack.md says what each outcome leaves.
//
// Unpack returns nil when everything in FILE is durable (queued, or in
// the mailbox) and FILE is removed, or when FILE's bundle id was unpacked
// before and FILE is removed without delivering anything. An error
// matching ErrQuarantined: FILE is damaged or not a bundle, or the
// link's rules refuse it (trust.go: who signed it, where it came from);
// it is in $OMAIL_HOME/quarantine/ and nothing in it was delivered. Any other
// error is temporary trouble: FILE is left alone and a re-run finishes
// the job without delivering anything twice (lib/seen keeps the
// progress).
//
// A bundle's checksums are at its end. The proxy hook reads every FILE
// twice: once whole to check it, then again to queue its messages, which
// cannot be taken back. The client hook decompresses FILE once: it
// checks the seal over the raw file first (a file cut or changed on its
// way never reaches the mailbox), appends while reading, and cuts the
// mailbox back to its old length when the stream turns out damaged.
// Neither keeps more than a buffer in memory.
package unpacker

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"
	"unsafe"

	"omail/lib/bundle"
	"omail/lib/clock"
	"omail/lib/control"
	"omail/lib/crashpoint"
	"omail/lib/eventlog"
	"omail/lib/home"
	"omail/lib/hugepages"
	"omail/lib/outbox"
	"omail/lib/quarantine"
	"omail/lib/safefile"
	"omail/lib/seen"
)

// ErrQuarantined matches the error of a FILE that is damaged, not a
// bundle, or refused, now moved into the quarantine: nothing in it was
// delivered, and trying again cannot help.
var ErrQuarantined = errors.New("quarantined")

// quarantined is the error Unpack returns for a FILE it moved aside.
type quarantined struct{ msg string }

func (q *quarantined) Error() string        { return q.msg }
func (q *quarantined) Is(target error) bool { return target == ErrQuarantined }

// Unpacker unpacks bundles.
type Unpacker struct {
	Home  string
	Env   home.Env // for the queue program and its environment
	Log   *eventlog.Log
	Now   func() time.Time // nil: the real clock
	Crash crashpoint.Hook  // tests' crash and hook points; nil: none

	me     string // control/me, read once
	date   string // the Received: date of second dateAt
	dateAt int64
}

// crash runs the test hooks at point. The lines held back go out first:
// a crash point may kill the process.
func (u *Unpacker) crash(point string) {
	if u.Crash != nil {
		u.Log.Flush()
		u.Crash.At(point)
	}
}

// Unpack unpacks file: for user's mailbox when user is not empty (the
// client hook), into the queue otherwise (the proxy hook). The error, if
// any, is one line for the log; the lines of what was done are logged.
func (u *Unpacker) Unpack(file, user string) error {
	defer u.Log.Flush()
	if user != "" {
		if err := outbox.CheckEndpoint(user); err != nil {
			return fmt.Errorf("refusing user %q: %v", user, err)
		}
	}
	if fi, err := os.Stat(u.Home); err != nil || !fi.IsDir() {
		return fmt.Errorf("OMAIL_HOME %s is not a directory", u.Home)
	}
	ru, err := u.readRules(file, user)
	if rf := (*refused)(nil); errors.As(err, &rf) {
		return u.quarantine(file, err)
	}
	if err != nil {
		return err
	}
	// One unpacker at a time: two copies of one bundle handed over at
	// once must not both deliver.
	st, err := seen.Open(u.Home, u.Now)
	if err == nil {
		st.Crash = u.Crash
	}
	if err != nil {
		return err
	}
	defer st.Close()
	if n := st.Expire(); n > 0 {
		u.Log.Printf("forgot %d bundle ids older than %v", n, seen.Horizon)
	}

	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	var r *bundle.Reader
	var id string
	// A version 3 bundle names its signer by a key id only: the reader
	// picks it among the keys the rules list for the endpoint.
	if user == "" {
		// What the raw file says first (its seal, its signature, who
		// signed it): a file nobody the rules trust signed is refused
		// before it is decompressed at all, so that a small file that
		// decompresses to gigabytes costs nothing unless a listed key
		// signed it.
		r, id, err = openSealed(f, ru.keys())
		if err == nil {
			h := r.Header
			r.Close()
			if aerr := ru.admit(h, true); aerr != nil {
				u.Log.Printf("bundle %s: endpoint %s: %v", h.ID, ru.endpoint, aerr)
				return u.quarantine(file, aerr)
			}
			if _, err = f.Seek(0, io.SeekStart); err == nil {
				r, id, err = openVerified(f, ru.bound, ru.keys())
			}
		}
	} else {
		r, id, err = openSealed(f, ru.keys())
	}
	if errors.Is(err, bundle.ErrDamaged) {
		return u.quarantine(file, err)
	}
	if se := (*bundle.SignerError)(nil); errors.As(err, &se) {
		// Signed by none of those keys: whoever it is, refused as a
		// key the rules do not list is.
		rerr := ru.unknownKeyID(se.KeyID)
		if id == "" {
			id = "in " + file // named a dictionary this omail lacks: not read
		}
		u.Log.Printf("bundle %s: endpoint %s: %v", id, ru.endpoint, rerr)
		return u.quarantine(file, rerr)
	}
	if de := (*bundle.DictError)(nil); errors.As(err, &de) {
		// Whole, but compressed with a dictionary only a newer omail
		// has: kept for it, unless it comes from a signer the rules
		// refuse anyway (nobody can make a file wait here for ever).
		if rerr := ru.admitSigner(de.Signer); rerr != nil {
			return u.quarantine(file, rerr)
		}
		return fmt.Errorf("%s: %v", file, err)
	}
	if err != nil {
		return fmt.Errorf("%s: %v", file, err)
	}
	defer r.Close()
	h := r.Header
	// Whose bundle it is is known now (the signature is checked), and
	// nothing of it was delivered yet.
	if err := ru.admit(h, user == ""); err != nil {
		u.Log.Printf("bundle %s: endpoint %s: %v", h.ID, ru.endpoint, err)
		return u.quarantine(file, err)
	}
	// The decoder has its window now: the heap holding it (and r) gets
	// huge pages for the bytes about to be written into it.
	hugepages.Advise(unsafe.Pointer(r))
	if st.Done(h.ID) {
		u.Log.Printf("bundle %s: %s: unpacked before; removing this copy", h.ID, file)
		if err := st.ClearProgress(h.ID); err != nil {
			return err
		}
		return u.finish(file)
	}
	if user != "" && !h.Legacy && h.Endpoint != user {
		// Without ocmppeers (admit refuses it with one).
		u.Log.Printf("bundle %s: packed for endpoint %s, delivered to user %s as OCMP asks (no ocmppeers)", h.ID, h.Endpoint, user)
	}
	if user != "" {
		err = u.client(r, user, st)
	} else {
		err = u.proxy(r, st, ru)
	}
	if user != "" && errors.Is(err, bundle.ErrDamaged) {
		// The client has cut the mailbox back: nothing from FILE was
		// delivered, and its journal has nothing left to undo. (The
		// proxy verified the whole file first; damage now is a file
		// changed under it: tried again, that is quarantined.)
		if err := st.ClearProgress(h.ID); err != nil {
			return err
		}
		return u.quarantine(file, err)
	}
	if err != nil {
		return fmt.Errorf("bundle %s: %s: %v; will try again", h.ID, file, err)
	}
	n := r.Count()
	if err := st.Record(h.ID, h.Endpoint, user, n); err != nil {
		return fmt.Errorf("bundle %s: recording it: %v", h.ID, err)
	}
	if err := st.ClearProgress(h.ID); err != nil {
		return err
	}
	u.crash("unpack-marked")
	what := "queued"
	if user != "" {
		what = "delivered to " + user
	}
	u.Log.Printf("bundle %s: endpoint %s: %d messages %s%s", h.ID, h.Endpoint, n, what, ru.seal(h))
	return u.finish(file)
}

// openVerified reads the whole of f to check it, then opens it again to
// deliver: the proxy hook reads every file twice, since a message in the
// queue cannot be taken back when a later part of its bundle turns out
// damaged.
//
// keys are the candidate signers of a version 3 bundle (bundle.NewReader);
// id is the bundle's id once its header was read, for the log, whatever
// the error.
func openVerified(f *os.File, bound int64, keys []ed25519.PublicKey) (r *bundle.Reader, id string, err error) {
	h, _, err := bundle.VerifyLimit(f, bound, keys...)
	if err == nil && h.Legacy {
		err = &bundle.DamagedError{Why: "an mbox fragment: only the client hook reads those"}
	}
	if err != nil {
		return nil, h.ID, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, h.ID, err
	}
	r, err = bundle.NewReader(f, keys...)
	if err != nil {
		return nil, h.ID, fmt.Errorf("second reading: %v", err) // not ErrDamaged: it was intact
	}
	// The signature the first reading checked is the one this reading
	// finds again at its end, or the rest of the bundle is damage (the
	// same open file, so only a writer to it in place could change it).
	r.ExpectSigner(h.Signer)
	r.SetLimit(bound)
	return r, h.ID, nil
}

// openSealed opens f for the client hook, which decompresses it once:
// the seal, checked here on the raw file, finds a file cut or changed on
// its way before anything is appended; damage in the stream itself
// (only a faulty packer makes that) is found while appending, and the
// mailbox is then cut back to where it was. keys are as openVerified's.
func openSealed(f *os.File, keys []ed25519.PublicKey) (*bundle.Reader, string, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, "", err
	}
	r, err := bundle.NewReader(f, keys...)
	if err != nil {
		return nil, "", err
	}
	if err := r.CheckSeal(f, fi.Size()); err != nil {
		r.Close()
		return nil, r.Header.ID, err
	}
	return r, r.Header.ID, nil
}

// finish removes FILE once everything in it is durable.
func (u *Unpacker) finish(file string) error {
	err := u.Crash.Op("unpack-bundle-remove", func() error { return safefile.Remove(file) })
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing %s: %v", file, err)
	}
	return nil
}

// quarantine moves a damaged file aside, for a person to look at.
func (u *Unpacker) quarantine(file string, why error) error {
	name := fmt.Sprintf("%s.%d.%d", filepath.Base(file), clock.Now(u.Now).Unix(), os.Getpid())
	to, err := quarantine.Move(u.Home, file, name)
	if err != nil {
		return fmt.Errorf("%s: %v; cannot quarantine it: %v", file, why, err)
	}
	return &quarantined{fmt.Sprintf("%s: %v: nothing delivered, moved to %s", file, why, to)}
}

// received is the trace line put on each unpacked message. Its
// parenthesis (mark) also marks, in a mailbox, which messages came from
// which bundle (see client's crash recovery).
func (u *Unpacker) received(h bundle.Header, i int) string {
	if u.me == "" {
		me, err := control.New(u.Home).Me()
		if err != nil {
			me = "localhost"
		}
		u.me = me
	}
	if now := clock.Now(u.Now); now.Unix() != u.dateAt || u.date == "" {
		u.date, u.dateAt = now.Format("Mon, 02 Jan 2006 15:04:05 -0700"), now.Unix()
	}
	return "Received: from " + h.Endpoint + " by " + u.me + " with OCMP " + mark(h.ID) +
		strconv.Itoa(i) + "); " + u.date
}

// mark is what the Received: line of each message of bundle id holds
// before the message's number.
func mark(id string) string { return "(omail-unpack bundle " + id + " message " }
