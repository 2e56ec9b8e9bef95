package queue

import (
	"errors"
	"hash/fnv"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"omail/lib/envelope"
	"omail/lib/safefile"
)

// Messages the queue manager makes from a queued message (a forward, a
// bounce) are queued exactly once, whatever instant a crash comes at
// (docs/INTERNALS.md, "Exactly-once forwards and bounces"):
//
//   - their id is derived from the original's id and what they are for
//     (DeriveID), so the attempt that repeats the work after a crash
//     names the same message;
//   - the complete message file is kept in tmp/ID.ready, renamed there
//     once written and synced, before it is linked into todo/: that name
//     is the intent, which outlives the message's own names until the
//     original's state records the work (Forget);
//   - a repeat that finds the intent does not write the message again
//     (BeginDerived returns ErrQueued): it finishes the link if the
//     message never reached the queue, and leaves it alone if it is in
//     the queue or was delivered and removed already. The two are told
//     apart by the file itself: a deliverer cuts a message's file back
//     to the message (Trim) before it delivers anything, so a file that
//     still ends with its footer was never taken from todo/.

// ErrQueued means a derived message was queued by an earlier attempt:
// it is in the queue, or was delivered already. It is no failure.
var ErrQueued = errors.New("queue: already queued")

// derivedPID is the pid field of a derived id: larger than any process
// id (pid_t is 32 bits), so no id made by newID can equal a derived one.
const derivedPID = "4294967296"

// DeriveID returns the id of the message made from message orig for key
// (e.g. the forward for one recipient): the same for the same orig and
// key, and a valid id. It keeps orig's time fields, so it sorts with its
// original, then a 64-bit hash of orig and key: two derived ids of one
// original's instant differ unless the hashes collide.
func DeriveID(orig, key string) string {
	secs, rest, _ := strings.Cut(orig, ".")
	nsecs, _, _ := strings.Cut(rest, ".")
	if !digits(secs) || !digits(nsecs) {
		secs, nsecs = "0", "0" // not an id: still a valid, stable result
	}
	h := fnv.New64a()
	h.Write([]byte(orig))
	h.Write([]byte{0})
	h.Write([]byte(key))
	return secs + "." + nsecs + "." + derivedPID + "." + strconv.FormatUint(h.Sum64(), 10)
}

// Derived is a derived message being written: Write its bytes, then
// Commit or Abort. It is a Pending with its own commit.
type Derived struct{ *Pending }

// readyPath is the intent: the whole message file, kept until Forget.
func (q *Queue) readyPath(id string) string { return q.Path(DirTmp, id+".ready") }

// BeginDerived starts derived message id. If an earlier attempt got as
// far as the intent, it writes nothing and returns ErrQueued, after
// linking the message into todo/ when that earlier attempt did not.
// The caller holds the original's lock: nobody else makes id.
func (q *Queue) BeginDerived(id string) (*Derived, error) {
	if !ValidID(id) {
		return nil, errors.New("queue: bad derived id " + strconv.Quote(id))
	}
	ready := q.readyPath(id)
	if _, err := os.Lstat(ready); err == nil {
		return nil, q.resume(id)
	} else if !errors.Is(err, fs.ErrNotExist) {
		// tmp/ unreadable (EACCES, EIO): nothing begun; the original's attempt records a deferral and repeats the work.
		return nil, err
	}
	tmp := q.Path(DirTmp, id+".mess")
	// A file of that name is an earlier attempt's, cut short before its
	// intent: never linked anywhere, so it is rewritten.
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		// Nothing written: the original's attempt defers and a repeat begins again.
		return nil, err
	}
	return &Derived{q.pending(id, tmp, f)}, nil
}

// resume finishes what an earlier attempt left of derived message id
// after writing its intent, and returns ErrQueued.
func (q *Queue) resume(id string) error {
	// Todo first: a deliverer writes info/ before it removes todo/, so
	// one of them exists from the link until the message is finished.
	for _, p := range []string{q.Path(DirTodo, id), q.Path(DirInfo, id),
		q.Path(DirCorrupt, id+"."+DirTodo), q.Path(DirCorrupt, id+"."+DirInfo)} {
		if _, err := os.Lstat(p); err == nil {
			return ErrQueued
		}
	}
	f, err := os.Open(q.readyPath(id))
	if err != nil {
		// The intent is unreadable (EIO) or was removed meanwhile: the attempt defers, and nothing is queued twice.
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		// fstat of an open file fails only with EIO: as above.
		return err
	}
	if _, msgLen, err := readTodo(int(f.Fd()), fi.Size(), nil); err != nil || msgLen < 0 {
		// Cut back to the message: a deliverer took it and finished it.
		return ErrQueued
	}
	err = q.Crash.Op("derived-resume-link", func() error { return os.Link(q.readyPath(id), q.Path(DirTodo, id)) })
	if err != nil && !errors.Is(err, fs.ErrExist) {
		// todo/ unwritable: the intent stays and the next repeat links it (TestDerivedLinkFailureKeepsTheIntent, through Commit).
		return err
	}
	if err := q.Crash.Op("derived-resume-dirsync", func() error { return safefile.SyncDir(q.Path(DirTodo, "")) }); err != nil {
		// An I/O error: the intent stays; the next repeat links again (EEXIST is fine) and syncs.
		return err
	}
	return ErrQueued
}

// Commit queues the message with envelope env, as Pending.Commit does,
// with one step more: the synced file is renamed to its intent name,
// and tmp/ is synced, before the link into todo/. ErrQueued means todo/
// had the id already.
func (d *Derived) Commit(env *envelope.Envelope) (string, error) {
	if d.done {
		return "", errors.New("queue: commit after abort")
	}
	defer d.Abort()
	q := d.q
	if err := d.seal("derived-fsync", env); err != nil {
		// Disk full or I/O error: Abort removes tmp/ID.mess, no intent exists, and a repeat writes the message anew.
		return "", err
	}
	d.done = true
	q.Crash.At("derived-written")
	if err := q.Crash.Op("derived-rename", func() error { return safefile.Rename(d.tmp, q.readyPath(d.id)) }); err != nil {
		// After the rename itself, a failed fsync leaves the intent:
		// a repeat resumes from it, which is as good as done.
		os.Remove(d.tmp)
		return "", err
	}
	q.Crash.At("derived-intent")
	err := q.Crash.Op("derived-link", func() error { return os.Link(q.readyPath(d.id), q.Path(DirTodo, d.id)) })
	if errors.Is(err, fs.ErrExist) {
		// todo/ID is this very message (the id is derived), linked by an earlier attempt whose intent the tmp/ cleanup removed.
		return "", ErrQueued
	}
	if err != nil {
		// The intent stays: a repeat finishes the link (resume).
		return "", err
	}
	if err := q.Crash.Op("derived-dirsync", func() error { return safefile.SyncDir(q.Path(DirTodo, "")) }); err != nil {
		// An I/O error: the intent stays, and the original's retry resumes the link and the fsync.
		return "", err
	}
	q.Crash.At("derived-linked")
	return d.id, nil
}

// Forget drops derived message id's intent, once the original's state
// durably records that the message was queued.
func (q *Queue) Forget(id string) {
	os.Remove(q.readyPath(id))
	os.Remove(q.Path(DirTmp, id+".mess"))
}
