// Package mbox is omail's one knowledge of the classic Unix mbox format
// (mboxrd): Appender (this file) appends messages the way mail readers
// expect, locked against them, quoted, and either wholly appended or not
// at all; Reader (reader.go) splits an mbox into messages as a stream;
// Lines and Signature (scan.go) let a program look over a mailbox it
// appended to, to recover after a crash.
//
// Locking. Open takes two locks, as Dovecot does for writes and mutt for
// any change: a fcntl write lock over the whole file, then a dotlock
// (path + ".lock"). The fcntl lock is an open file description (OFD)
// lock: it conflicts with the classic POSIX locks mutt and Dovecot take,
// and, unlike them, also with another Appender in this same process.
// Both are tried without blocking; when either is held by someone else,
// both are released and the attempt is repeated with a growing pause
// (10ms, doubling up to 320ms) until LockTimeout has passed, then Open
// fails with a temporary error (ErrLocked). Never holding one lock while
// waiting for the other keeps us out of deadlocks with programs that
// take them in the other order.
//
// Our dotlock records where our append starts (OpenLock's, for a caller
// that changes the file itself and appends nothing, records no length),
// and a writer that finds the lock of an omail writer that died holding
// it cuts the mailbox back there: a kill in the middle of a message leaves no torn copy for long,
// even when other mail comes next (dotlock.go). A dotlock whose file has
// not been modified for DotlockStale is taken as left behind by a
// crashed program and removed. When the directory does not let us create
// a dotlock at all (a 1777-less /var/mail when delivering as the user, a
// read-only directory), the fcntl lock alone is used, as Dovecot's
// "dotlock_try" does.
//
// Atomicity. Open remembers the file's length. Any error while adding,
// and Abort, cut the file back to that length and fsync it; a reader
// never sees half a message once the lock is gone. Commit fsyncs; only
// after it returns nil is the mail durable.
package mbox

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"omail/lib/crashpoint"
	"omail/lib/safefile"
)

// LockTimeout bounds the total time Open waits for the locks.
var LockTimeout = 30 * time.Second

// DotlockStale is the age after which a dotlock is considered abandoned.
// Five minutes is far beyond any delivery we make: the lock is held only
// while one batch of messages is written.
var DotlockStale = 5 * time.Minute

// ErrLocked is returned by Open when the mailbox stayed locked by someone
// else for LockTimeout. It is a temporary condition.
var ErrLocked = errors.New("mailbox is locked")

// Appender is an mbox opened and locked for appending.
type Appender struct {
	path     string
	f        *os.File
	dotlock  string   // "" when we hold no dotlock
	lockf    *os.File // our dotlock, open for rewriting its length (dotlock.go)
	lockOff  int64    // where its length is
	oldLen   int64
	w        *bufio.Writer
	wb       *writeback // under w
	hooked   bool       // w writes through Hook.Writer("mbox-write", wb)
	buf      []byte     // Add's copy buffer, one for all messages
	date     []byte     // Add's From_ line date
	tail     [2]byte    // the last two bytes of the file, for separating messages
	tailN    int        // how many of tail are valid (0, 1 or 2)
	err      error      // first error; after it the appender only aborts
	added    bool       // whether Add wrote anything (else Abort has nothing to undo)
	done     bool
	lockOnly bool // OpenLock: our dotlock records no length; Add refuses

	// Hook, when not nil, is called with a crash point's name at the
	// steps of Add and Commit (lib/crashpoint): "mbox-torn" (the first
	// lines of a message written to the file, its body not yet),
	// "mbox-written" (everything written, not fsynced), "mbox-synced";
	// and it may inject disk errors into the writes ("mbox-write"), the
	// fsync ("mbox-fsync") and the cutting back (points.go).
	Hook crashpoint.Hook
}

// Open locks the mbox at path (creating it 0600 if missing, owned by the
// current user), taking an OFD fcntl write lock and a dotlock, and
// remembers the current length. Symbolic links are not followed: the
// mailbox itself must be a regular file.
func Open(path string) (*Appender, error) { return OpenHooked(path, nil) }

// OpenHooked is Open with the Hook set from the start, so that the
// points of the locking (dotlock-*) are reached too.
func OpenHooked(path string, h crashpoint.Hook) (*Appender, error) {
	return openAs(path, h, false)
}

// OpenLock takes the locks as OpenHooked does, for a caller that does
// not append but changes the mailbox itself, through File, while it
// holds them (omail-pack cuts packed mail from the front). Its dotlock
// records no length: a writer that finds it after our death removes it
// and cuts nothing, for we appended nothing, and a length recorded at
// lock time would cut off whatever a writer ignoring the locks appended
// since (and, once we moved such mail to the front, mail that was
// there). Add refuses; Commit or Abort releases the locks and leaves
// the file as the caller left it.
func OpenLock(path string, h crashpoint.Hook) (*Appender, error) {
	return openAs(path, h, true)
}

func openAs(path string, h crashpoint.Hook, lockOnly bool) (*Appender, error) {
	for try := 0; ; try++ {
		a, err := open1(path, h, lockOnly)
		if err != nil {
			return nil, err
		}
		// While we waited for the locks, a mail reader may have written
		// a new mailbox and renamed it over the path, or removed it:
		// then we hold the locks of a file nobody will read. Open again.
		if a.atPath() {
			return a, nil
		}
		a.unlock()
		if try == 2 {
			return nil, fmt.Errorf("%w: %s: replaced again and again while we waited", ErrLocked, path)
		}
	}
}

// atPath reports whether the locked file is still the one at the path.
func (a *Appender) atPath() bool {
	mine, err1 := a.f.Stat()
	now, err2 := os.Lstat(a.path)
	return err1 == nil && err2 == nil && os.SameFile(mine, now)
}

func open1(path string, h crashpoint.Hook, lockOnly bool) (*Appender, error) {
	f, err := openOrCreate(path)
	if err != nil {
		// Cannot open the mailbox (a symbolic link, EACCES, no room to create it): nothing changed.
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		// fstat of an open file fails only with EIO: nothing changed.
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		// A FIFO or device where the mailbox should be: refused before anything is written.
		f.Close()
		return nil, fmt.Errorf("mbox %s: not a regular file", path)
	}
	a := &Appender{path: path, f: f, Hook: h, lockOnly: lockOnly}
	if err := a.lock(); err != nil {
		f.Close()
		return nil, err
	}
	// The length only counts once we hold the lock: someone may have
	// appended while we waited.
	st, err = f.Stat()
	if err != nil {
		// As above, under the locks, which are released: nothing written.
		a.unlock()
		return nil, err
	}
	if err := a.settle(st.Size()); err != nil {
		// An I/O error reading the last bytes: locks released, nothing written.
		a.unlock()
		return nil, err
	}
	return a, nil
}

// openOrCreate opens the mailbox at path, creating it empty when it is
// missing. A mailbox it creates has its name made durable at once
// (safefile.SyncDir: on ext4 without a journal, the new file's
// allocation too), so that what is appended and fsynced later is
// reachable after a power cut.
func openOrCreate(path string) (*os.File, error) {
	for try := 0; ; try++ {
		f, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
		if !errors.Is(err, fs.ErrNotExist) || try == 10 {
			return f, err
		}
		f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue // made by someone else meanwhile: open theirs
		}
		if err != nil {
			return nil, err
		}
		if err := safefile.SyncDir(filepath.Dir(path)); err != nil {
			// An empty mailbox is left, as any creation leaves it; nothing is delivered.
			f.Close()
			return nil, err
		}
		return f, nil
	}
}

// settle makes length the file's length at Open: what Abort cuts back
// to, and where Add writes next.
func (a *Appender) settle(length int64) error {
	a.oldLen, a.tailN, a.tail = length, 0, [2]byte{}
	if length > 0 {
		n := min(int64(2), length)
		if _, err := a.f.ReadAt(a.tail[2-n:], length-n); err != nil {
			// EIO: Open or Recover reports it before anything is written.
			return err
		}
		a.tailN = int(n)
	}
	if _, err := a.f.Seek(length, io.SeekStart); err != nil {
		// Cannot fail: a regular file open for writing, an offset within it.
		return err
	}
	a.wb = &writeback{f: a.f, fd: int(a.f.Fd()), off: length, started: length}
	a.w, a.hooked = bufio.NewWriterSize(a.wb, 64<<10), false
	return nil
}

// Path returns the mailbox path.
func (a *Appender) Path() string { return a.path }

// File is the locked mailbox, open for reading and writing: what a
// caller looks at or cuts while it holds the locks goes through it, not
// through the path, which someone may have pointed elsewhere meanwhile.
// It stays the Appender's: do not close it.
func (a *Appender) File() *os.File { return a.f }

// Add appends one message: "From <sender or MAILER-DAEMON> <asctime date>\n",
// then the prefix header lines (e.g. Return-Path, Delivered-To), then the
// message read from r with mboxrd quoting (">*From " at the start of a
// line gets one more '>'), ending with "\n" and followed by a blank line.
// It streams: the message is never held in memory. After an error the
// caller must call Abort.
func (a *Appender) Add(sender string, prefix []string, r io.Reader, t time.Time) error {
	if a.done {
		// A programming error, reported; nothing written.
		return errors.New("mbox: Add after Commit or Abort")
	}
	if a.err != nil {
		// An earlier Add failed: the caller must Abort, which cuts the file back.
		return a.err
	}
	if a.lockOnly {
		// A programming error: our dotlock says we append nothing.
		return errors.New("mbox: Add on a mailbox opened with OpenLock")
	}
	for _, p := range prefix {
		if strings.ContainsAny(strings.TrimSuffix(p, "\n"), "\r\n") {
			a.err = fmt.Errorf("mbox: prefix line holds a line break: %q", p)
			return a.err
		}
	}
	if a.Hook != nil && !a.hooked {
		// Set after Open (the caller's field): nothing is buffered yet.
		a.hooked = true
		a.w.Reset(a.Hook.Writer("mbox-write", a.wb))
	}
	a.added = true
	// A new message starts at the beginning of a line after a blank line,
	// whatever the previous writer left.
	switch {
	case a.tailN == 0:
	case a.tail[1] != '\n':
		a.write("\n\n")
	case a.tailN == 2 && a.tail[0] != '\n':
		a.write("\n")
	}
	// Piece by piece: no string built per message.
	a.write("From ")
	if fromSenderClean(sender) {
		a.write(sender)
	} else {
		a.write(FromSender(sender))
	}
	a.write(" ")
	a.date = t.AppendFormat(a.date[:0], "Mon Jan _2 15:04:05 2006")
	if a.err == nil {
		if _, err := a.w.Write(a.date); err != nil {
			// A buffered write fails only when its flush does (disk full, EIO): recorded, and Commit cuts the file back.
			a.fail(err)
		}
	}
	a.write("\n")
	for _, p := range prefix {
		a.write(strings.TrimSuffix(p, "\n"))
		a.write("\n")
	}
	if a.Hook != nil && a.err == nil {
		if err := a.w.Flush(); err != nil {
			// Only when a crash point is set (OMAIL_CRASHPOINT, tests): as above.
			a.fail(err)
		} else {
			a.Hook("mbox-torn")
		}
	}
	if a.err == nil {
		q := quoter{w: a.w, start: true}
		if a.buf == nil {
			a.buf = make([]byte, 32<<10)
		}
		// io.Copy would allocate a buffer per message: garbage that,
		// message after message, costs more than the copying.
		if _, err := io.CopyBuffer(&q, r, a.buf); err != nil {
			a.fail(err)
		} else if err := q.close(); err != nil {
			// As for every write here: recorded, and Commit cuts the file back.
			a.fail(err)
		}
	}
	a.write("\n")
	a.tail, a.tailN = [2]byte{'\n', '\n'}, 2
	return a.err
}

func (a *Appender) at(point string) {
	if a.Hook != nil {
		a.Hook(point)
	}
}

func (a *Appender) write(s string) {
	if a.err != nil {
		return
	}
	if _, err := a.w.WriteString(s); err != nil {
		// As above: recorded, and Commit cuts the file back.
		a.fail(err)
	}
}

func (a *Appender) fail(err error) {
	if a.err == nil {
		a.err = fmt.Errorf("mbox %s: %w", a.path, err)
	}
}

// fromSenderClean reports whether FromSender would return sender as it is.
func fromSenderClean(sender string) bool {
	if sender == "" {
		return false
	}
	for i := 0; i < len(sender); i++ {
		if c := sender[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// FromSender is the envelope sender as it appears on a "From " line:
// MAILER-DAEMON for the null sender, and no white space or control
// characters, which would make readers misparse the line.
func FromSender(sender string) string {
	if sender == "" {
		return "MAILER-DAEMON"
	}
	b := []byte(sender)
	for i, c := range b {
		if c <= ' ' || c == 0x7f {
			b[i] = '_'
		}
	}
	return string(b)
}

// Commit flushes and fsyncs what was added and releases the locks. Only
// when it returns nil is the mail durable. When it fails, the file is cut
// back to its length at Open, as by Abort.
func (a *Appender) Commit() error {
	if a.done {
		// A programming error, reported; nothing written.
		return errors.New("mbox: Commit after Commit or Abort")
	}
	if a.err == nil {
		if err := a.w.Flush(); err != nil {
			// Disk full or EIO: Abort below cuts the file back to its length at Open and fsyncs it.
			a.fail(err)
		} else {
			a.at("mbox-written")
			if err := a.Hook.Op("mbox-fsync", a.f.Sync); err != nil {
				// As above.
				a.fail(err)
			}
		}
	}
	if a.err == nil {
		a.at("mbox-synced")
	}
	if a.err != nil {
		err := a.err
		a.Abort()
		return err
	}
	a.done = true
	return a.unlock()
}

// Abort cuts the file back to its length at Open, fsyncs it, and releases
// the locks. It returns an error only when the file could not be restored.
// An Appender that added nothing leaves the file alone (a caller may use
// one only as the lock and change the file itself), and the file is never
// made longer than it is.
func (a *Appender) Abort() error {
	if a.done {
		return nil
	}
	a.done = true
	var err error
	if a.added {
		var st os.FileInfo
		if st, err = a.f.Stat(); err == nil && st.Size() > a.oldLen {
			err = a.Hook.Op("mbox-abort-truncate", func() error { return a.f.Truncate(a.oldLen) })
		}
		if err == nil {
			err = a.Hook.Op("mbox-abort-fsync", a.f.Sync)
		}
	}
	if err != nil {
		// The file could not be cut back (EIO): said so. Our dotlock
		// stays, naming the length to cut to: the writer that finds it
		// once this process is gone cuts (dotlock.go), and meanwhile
		// no one appends after the torn copy.
		if a.lockf != nil {
			a.lockf.Close()
			a.lockf, a.dotlock = nil, ""
		}
		a.f.Close()
		return fmt.Errorf("mbox %s: cannot cut back to %d bytes: %w", a.path, a.oldLen, err)
	}
	return a.unlock()
}

// writeback writes to the mailbox and, every writebackChunk bytes, asks
// the kernel to start writing them to disk (sync_file_range, without
// waiting): the disk works while the next messages are decompressed,
// and Commit's fsync finds little left to write. It changes nothing
// about durability (only Commit's fsync counts) nor about Abort (data
// cut off after being written back is simply gone).
type writeback struct {
	f       *os.File
	fd      int
	off     int64 // file offset of the next write
	started int64 // offset up to which writeback was started
}

const writebackChunk = 1 << 20

func (w *writeback) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.off += int64(n)
	if w.off-w.started >= writebackChunk {
		// Best effort: an error here is found by Commit's fsync.
		unix.SyncFileRange(w.fd, w.started, w.off-w.started, unix.SYNC_FILE_RANGE_WRITE)
		w.started = w.off
	}
	return n, err
}

// quoter copies a message with mboxrd quoting: a line that matches
// ">*From " gets one more '>' in front. The decision at the start of a
// line is made on counts, not on buffered bytes, so a line of any length
// streams through.
type quoter struct {
	w     *bufio.Writer
	start bool // at the start of a line, deciding
	gt    int  // '>' characters seen at this line start, not yet written
	from  int  // bytes of "From " matched after them, not yet written
	last  byte // the last byte written
	any   bool // whether anything was written
}

const fromLine = "From "

func (q *quoter) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		if !q.start {
			i := bytes.IndexByte(p, '\n')
			chunk := p
			if i >= 0 {
				chunk = p[:i+1]
				q.start = true
			}
			if _, err := q.w.Write(chunk); err != nil {
				return 0, err
			}
			q.last, q.any = chunk[len(chunk)-1], true
			p = p[len(chunk):]
			continue
		}
		c := p[0]
		switch {
		case c == '>' && q.from == 0:
			q.gt++
			p = p[1:]
		case c == fromLine[q.from]:
			q.from++
			p = p[1:]
			if q.from == len(fromLine) {
				if err := q.pending(1); err != nil {
					// A buffered write error (disk full, EIO): Add records it, and Commit cuts the file back.
					return 0, err
				}
				q.start = false
			}
		default:
			// Not a From line: write what was held back, then go on with
			// this byte as an ordinary one (it may be a newline, which
			// starts the next decision).
			if err := q.pending(0); err != nil {
				// As above.
				return 0, err
			}
			q.start = false
		}
	}
	return total, nil
}

// pending writes the held-back line start, with extra more '>'.
func (q *quoter) pending(extra int) error {
	for n := q.gt + extra; n > 0; n-- {
		if err := q.w.WriteByte('>'); err != nil {
			// As above.
			return err
		}
		q.last, q.any = '>', true
	}
	if q.from > 0 {
		if _, err := q.w.WriteString(fromLine[:q.from]); err != nil {
			// As above.
			return err
		}
		q.last, q.any = fromLine[q.from-1], true
	}
	q.gt, q.from = 0, 0
	return nil
}

// close writes what is held back and makes the message end with "\n".
func (q *quoter) close() error {
	if err := q.pending(0); err != nil {
		// As above.
		return err
	}
	if q.any && q.last != '\n' {
		return q.w.WriteByte('\n')
	}
	return nil
}
