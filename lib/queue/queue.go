// Package queue is omail's on-disk queue: how a message gets in (one
// commit point, durable before anyone says "accepted"), how its state is
// kept per recipient, and how it leaves. docs/INTERNALS.md describes the
// layout and the states; this package is the only code that knows them.
package queue

import (
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

	"omail/lib/clock"
	"omail/lib/crashpoint"
	"omail/lib/envelope"
	"omail/lib/safefile"
)

// Subdirectories of the queue.
const (
	DirTmp     = "tmp"     // files being written; never read by anyone else
	DirMess    = "mess"    // message bodies, immutable once linked in
	DirTodo    = "todo"    // committed envelopes not yet taken by a deliverer
	DirInfo    = "info"    // envelopes with per-recipient state, the deliverer's
	DirCorrupt = "corrupt" // damaged files, set aside for a person, never deleted
	DirLock    = "lock"    // the trigger fifo
	Trigger    = "lock/trigger"
)

// Queue is a queue directory.
type Queue struct {
	Dir string
	// Now is the clock; tests inject their own.
	Now func() time.Time
	// Crash is the test hooks at the commit's steps (lib/crashpoint).
	Crash crashpoint.Hook
}

// New returns the queue under an OMAIL_HOME.
func New(home string) *Queue {
	return &Queue{Dir: filepath.Join(home, "queue"), Now: time.Now}
}

func (q *Queue) now() time.Time { return clock.Now(q.Now) }

// Path joins a queue subdirectory and a name.
func (q *Queue) Path(sub, name string) string { return filepath.Join(q.Dir, sub, name) }

// Init creates the queue directories and the trigger fifo, as far as they
// are missing. It is what `make install` and the tests run.
func (q *Queue) Init() error {
	for _, d := range append([]string{"", DirTmp, DirMess, DirTodo, DirInfo, DirCorrupt, DirLock}, noteDirs...) {
		if err := os.MkdirAll(filepath.Join(q.Dir, d), 0o750); err != nil {
			return err
		}
	}
	err := syscall.Mkfifo(filepath.Join(q.Dir, Trigger), 0o620)
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return nil
}

// Check reports a queue whose directories are missing, so that programs
// can fail with a clear message rather than half-write.
func (q *Queue) Check() error {
	for _, d := range []string{DirTmp, DirMess, DirTodo, DirInfo} {
		fi, err := os.Stat(filepath.Join(q.Dir, d))
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", filepath.Join(q.Dir, d))
		}
	}
	return nil
}

var idSeq atomic.Uint64

// newID returns a queue id: the time, the pid and a per-process counter,
// so ids sort by arrival and no two processes can make the same one.
// Commit also refuses to overwrite an existing message, whatever happens
// to clocks.
func (q *Queue) newID() string {
	t := q.now()
	return fmt.Sprintf("%d.%09d.%d.%d", t.Unix(), t.Nanosecond(), os.Getpid(), idSeq.Add(1))
}

// ValidID reports whether a directory entry is a queue id: four fields
// of digits separated by dots, as newID makes them. Anything else in a
// queue directory (the temporary ".ID123..." files of a state being
// rewritten, a stranger's file) is not a message and is left alone.
func ValidID(id string) bool {
	if len(id) > 100 {
		return false
	}
	for i := 0; i < 3; i++ {
		f, rest, ok := strings.Cut(id, ".")
		if !ok || !digits(f) {
			return false
		}
		id = rest
	}
	return digits(id)
}

// Pending is a message being written into the queue.
type Pending struct {
	q    *Queue
	id   string
	tmp  string
	f    *os.File
	w    io.Writer // f, or a test's failing writer (Crash.Writer)
	n    int64     // message bytes written
	done bool
	// linked records that todo/ID exists, so that Abort undoes exactly
	// our step and never touches another message.
	linked bool
}

// Begin starts a new message; write its bytes to the Pending, then
// Commit or Abort.
func (q *Queue) Begin() (*Pending, error) {
	for i := 0; ; i++ {
		id := q.newID()
		tmp := q.Path(DirTmp, id+".mess")
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
		if errors.Is(err, fs.ErrExist) && i < 10 {
			continue
		}
		if err != nil {
			return nil, err
		}
		return q.pending(id, tmp, f), nil
	}
}

func (q *Queue) pending(id, tmp string, f *os.File) *Pending {
	return &Pending{q: q, id: id, tmp: tmp, f: f, w: q.Crash.Writer("queue-write", f)}
}

// ID is the queue id the message will have.
func (p *Pending) ID() string { return p.id }

func (p *Pending) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.n += int64(n)
	return n, err
}

// Abort throws the message away. After Commit it does nothing.
func (p *Pending) Abort() {
	if p.done {
		return
	}
	p.done = true
	p.f.Close()
	if p.linked {
		// Only after a failed fsync of todo/: the link goes so that the caller's 451 holds; a deliverer that took the entry in that instant delivers it, and the client's retry makes a second copy (qmail's window).
		os.Remove(p.q.Path(DirTodo, p.id))
	}
	os.Remove(p.tmp)
}

// Commit makes the message part of the queue, with the given envelope,
// in one file and two fsyncs (docs/INTERNALS.md, "Getting in"):
//
//  1. the envelope, as a state file, and a footer go after the message
//     in tmp/ID.mess, and the file is fsynced;
//  2. it is linked to todo/ID (link refuses to overwrite) and todo/ is
//     fsynced: the commit point. Before it the message does not exist
//     for anyone; after it, it is accepted.
//
// A deliverer later gives the message its own name in mess/ (LinkMessage,
// the mark that an attempt has begun), delivers from the file as it is
// when every recipient is local, and moves the envelope to info/ only
// when something must be remembered or another transport needs the
// message alone (SaveState, Unfold, Trim). A crash before step 2
// leaves only a file in tmp/, which omail-deliver removes once it is old.
//
// The fsync of todo/ is shared with the other commits of this process
// that happen at the same moment (safefile.SyncDir: group commit), each
// waiting for an fsync that started after its own link.
func (p *Pending) Commit(env *envelope.Envelope) (string, error) {
	if p.done {
		return "", errors.New("queue: commit after abort")
	}
	defer p.Abort()
	q := p.q
	if err := p.seal("queue-commit-fsync", env); err != nil {
		return "", err
	}
	q.Crash.At("queue-commit-synced")
	err := q.Crash.Op("queue-commit-link", func() error { return os.Link(p.tmp, q.Path(DirTodo, p.id)) })
	if err != nil {
		return "", err
	}
	p.linked = true
	q.Crash.At("queue-commit-linked")
	// A failed fsync of todo/ leaves the link undone by Abort: the
	// sender hears of a temporary failure and the queue shows nothing.
	if err := q.Crash.Op("queue-commit-dirsync", func() error { return safefile.SyncDir(q.Path(DirTodo, "")) }); err != nil {
		return "", err
	}
	p.done = true
	// todo/ID is the message now; a tmp/ name left by a failed unlink
	// is cleaned up by omail-deliver once it is old.
	q.Crash.Op("queue-commit-unlink-tmp", func() error { return os.Remove(p.tmp) })
	return p.id, nil
}

// seal ends the message file: the envelope as a state file and the
// footer go after the message (todofile.go), the file is fsynced (the
// file operation called point) and closed.
func (p *Pending) seal(point string, env *envelope.Envelope) error {
	if p.n == 0 {
		// Never the case for omail-queue, which writes a Received: line;
		// a zero length would make the trailer indistinguishable from
		// a message that carries none.
		return errors.New("queue: empty message")
	}
	state := NewState(p.id, p.q.now(), env).Marshal()
	if _, err := p.w.Write(appendFooter(state, p.n, int64(len(state)))); err != nil {
		// Disk full or I/O error before the link: the caller's Abort removes tmp/ID.mess; nothing was acknowledged.
		return err
	}
	if err := p.q.Crash.Op(point, p.f.Sync); err != nil {
		// As above: never linked, removed by Abort, nothing acknowledged.
		return err
	}
	return p.f.Close()
}

// Notify tells a running omail-deliver that there is new mail, by writing
// a byte to the trigger fifo. No reader, or a full fifo, is fine: the
// deliverer either is not running or has been told already.
func (q *Queue) Notify() {
	f, err := os.OpenFile(filepath.Join(q.Dir, Trigger), os.O_WRONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return
	}
	f.Write([]byte{0})
	f.Close()
}

// Enqueue queues a whole message in one call: for programs that hold the
// envelope already (bounces, unpacked bundles).
func (q *Queue) Enqueue(msg io.Reader, env *envelope.Envelope) (string, error) {
	p, err := q.Begin()
	if err != nil {
		return "", err
	}
	defer p.Abort()
	if _, err := io.Copy(p, msg); err != nil {
		return "", err
	}
	return p.Commit(env)
}

// Entry is a message found in the queue.
type Entry struct {
	ID    string
	Dir   string // DirTodo or DirInfo
	State *State
	Size  int64 // of the message file; -1 when it is missing
	Err   error // the state file could not be read or parsed
}

// Each calls fn for every message in todo/ and info/, in arrival order,
// holding one message's state at a time (mailq, omail-deliver's
// selections).
func (q *Queue) Each(fn func(Entry)) error { return q.each(fn) }

// Scan lists the messages in todo/ and info/, sorted by id (arrival).
func (q *Queue) Scan() ([]Entry, error) {
	var out []Entry
	err := q.each(func(e Entry) { out = append(out, e) })
	return out, err
}
