package queue

import (
	"errors"
	"io/fs"
	"os"
	"syscall"

	"omail/lib/safefile"
)

// The administrator's notes on messages (omail-deliver -hold, -release,
// -retry). They are files beside the message, never changes to its
// state: a deliverer reads them under the message's lock, so an admin
// action needs no lock of its own and cannot race an attempt's rewrite
// of info/ID (docs/INTERNALS.md, "Held messages").
const (
	// DirHold holds an empty file hold/ID for each held message: no
	// attempt delivers, bounces or expires it while the file exists.
	DirHold = "hold"
	// DirWake holds an empty file wake/ID, "every recipient of this
	// message is due now" (a flush of this one message), for the next
	// attempt and for the daemon, which otherwise would not notice a
	// release or a retry until the message's own due time.
	DirWake = "wake"
)

// Held reports whether message id is held. An error other than "no
// note" counts as held: better to wait than to deliver what someone
// asked to keep.
func (q *Queue) Held(id string) bool {
	_, err := os.Lstat(q.Path(DirHold, id))
	return !errors.Is(err, fs.ErrNotExist)
}

// SetHold writes or removes message id's hold note durably.
func (q *Queue) SetHold(id string, held bool) error {
	if !ValidID(id) {
		return errors.New("queue: bad message id " + id)
	}
	if !held {
		err := safefile.Remove(q.Path(DirHold, id))
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	if err := q.noteDir(DirHold); err != nil {
		return err
	}
	return q.writeNote(DirHold, id, nil)
}

// HeldIDs lists the held messages (unsorted); none when hold/ is
// missing (a queue made by an older omail).
func (q *Queue) HeldIDs() ([]string, error) { return q.noteIDs(DirHold) }

// noteIDs lists the ids with a note in sub; none when the directory is
// missing.
func (q *Queue) noteIDs(sub string) ([]string, error) {
	ids, err := q.ids(sub)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return ids, err
}

// Wake makes every recipient of message id due now, and tells a running
// daemon through the trigger fifo.
func (q *Queue) Wake(id string) error {
	if !ValidID(id) {
		return errors.New("queue: bad message id " + id)
	}
	if err := q.noteDir(DirWake); err != nil {
		return err
	}
	if err := q.writeNote(DirWake, id, nil); err != nil {
		return err
	}
	q.Notify()
	return nil
}

// Wakes lists the messages with a wake note (unsorted).
func (q *Queue) Wakes() ([]string, error) { return q.noteIDs(DirWake) }

// Woken reports whether message id has a wake note, without removing it.
func (q *Queue) Woken(id string) bool {
	_, err := os.Lstat(q.Path(DirWake, id))
	return err == nil
}

// DropWake removes message id's wake note, once an attempt has acted on
// it. It need not be durable: a note that comes back after a crash
// costs one early attempt.
func (q *Queue) DropWake(id string) {
	os.Remove(q.Path(DirWake, id))
}

// DropNotes removes every note of a message that is gone from the queue.
func (q *Queue) DropNotes(id string) error {
	q.DropWake(id)
	return q.SetHold(id, false)
}

// noteDir creates a note directory that a queue made by an older omail
// lacks, owned like the queue itself (an administrator running as root
// must not leave a directory the daemon's user cannot write).
func (q *Queue) noteDir(sub string) error {
	p := q.Path(sub, "")
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	if err := os.Mkdir(p, 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	q.ownLikeQueue(p)
	return safefile.SyncDir(q.Dir)
}

// writeNote writes a note durably, owned like the queue.
func (q *Queue) writeNote(sub, id string, data []byte) error {
	p := q.Path(sub, id)
	if err := safefile.WriteFile(p, data, 0o640); err != nil {
		return err
	}
	q.ownLikeQueue(p)
	return nil
}

// ownLikeQueue gives a note root made the queue directory's owner. The
// notes are advisory: a failure here leaves a note the daemon can still
// read (0640, the queue's group), so it is not an error.
func (q *Queue) ownLikeQueue(p string) { ChownLike(p, q.Dir) }

// ChownLike gives p, just made by root, the owner and group of ref: an
// administrator running as root must not leave a file or directory the
// unprivileged programs cannot use (a note, the outbox's lock, held/),
// and omail-pack's bundles must be OCMP's. As anyone else it does
// nothing. Callers for whom the group's permissions are enough anyway
// ignore the error.
func ChownLike(p, ref string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	fi, err := os.Stat(ref)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	return os.Lchown(p, int(st.Uid), int(st.Gid))
}

// noteDirs are created by Init beside the queue's own directories.
var noteDirs = []string{DirHold, DirWake}
