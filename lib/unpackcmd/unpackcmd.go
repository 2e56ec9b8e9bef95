// Package unpackcmd is the body of omail-unpack, the OCMP hooks:
//
//	omail-unpack proxy FILE        each message into the queue
//	omail-unpack client USER FILE  every message into mailspool/USER
//
// Exit 0: everything in FILE is durable (queued, or in the mailbox) and
// FILE is removed; or FILE's bundle id was unpacked before, and FILE is
// removed without delivering anything. Exit 100: FILE is damaged or not
// a bundle; it is moved to $OMAIL_HOME/quarantine/ and nothing in it was
// delivered. Exit 111: temporary trouble; FILE is left alone and a
// re-run finishes the job without delivering anything twice (see
// docs/omail-unpack.md for the crash windows).
//
// A bundle's checksums are at its end. The proxy hook reads every FILE
// twice: once whole to check it, then again to queue its messages, which
// cannot be taken back. The client hook decompresses FILE once: it
// checks the seal over the raw file first (a file cut or changed on its
// way never reaches the mailbox), appends while reading, and cuts the
// mailbox back to its old length when the stream turns out damaged.
// Neither keeps more than a buffer in memory.
package unpackcmd

import (
	"bufio"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"omail/lib/bundle"
	"omail/lib/control"
	"omail/lib/crashpoint"
	"omail/lib/envelope"
	"omail/lib/home"
	"omail/lib/lockfile"
	"omail/lib/mbox"
	"omail/lib/outbox"
	"omail/lib/qexit"
	"omail/lib/qqclient"
	"omail/lib/safefile"
)

// Exit codes.
const (
	OK        = 0
	Permanent = 100
	Temporary = 111
)

// Horizon is how long the id of an unpacked bundle is remembered. A copy
// of a bundle arriving later than this after the first is unpacked
// again. OCMP redelivers within hours or days; 90 days is far beyond.
const Horizon = 90 * 24 * time.Hour

// Seen-ids directory and quarantine, under OMAIL_HOME.
const (
	SeenDir       = "unpacked"
	QuarantineDir = "quarantine"
)

// Run is omail-unpack.
func Run(args []string, env home.Env, stdin io.Reader, stdout, stderr io.Writer) int {
	u := &Unpacker{Home: env.Dir(), Env: env, Log: stderr, Crash: crashpoint.New(env)}
	switch {
	case len(args) == 4 && args[1] == "client":
		return u.Unpack(args[3], args[2])
	case len(args) == 3 && args[1] == "proxy":
		return u.Unpack(args[2], "")
	}
	// A wrong dirapi.conf line: temporary, so OCMP keeps the file until a
	// person fixes the line.
	fmt.Fprintln(stderr, "omail-unpack: usage: omail-unpack client USER FILE | omail-unpack proxy FILE")
	return Temporary
}

// Unpacker unpacks bundles.
type Unpacker struct {
	Home  string
	Env   home.Env // for the queue program and its environment
	Log   io.Writer
	Now   func() time.Time
	Crash func(point string)

	me     string // control/me, read once
	date   string // the Received: date of second dateAt
	dateAt int64
	lines  []byte // per-message log lines not yet written
}

// logBatch is how many bytes of per-message log lines are written at
// once: a write up to PIPE_BUF (4 KiB) is never interleaved with another
// writer's on a pipe, and a bundle of 1,500 messages is 40 writes rather
// than 1,500.
const logBatch = 4096

func (u *Unpacker) now() time.Time {
	if u.Now != nil {
		return u.Now()
	}
	return time.Now()
}

func (u *Unpacker) crash(point string) {
	if u.Crash != nil {
		u.flushLog()
		u.Crash(point)
	}
}

// logf writes one line to the log, after the message lines held back.
func (u *Unpacker) logf(format string, args ...any) {
	u.lines = fmt.Appendf(u.lines, "omail-unpack: "+format+"\n", args...)
	u.flushLog()
}

// msgf is logf for the line of each message, which is held back until
// logBatch bytes of lines, or any other line, are to be written (and,
// at the latest, until Unpack returns).
func (u *Unpacker) msgf(format string, args ...any) {
	n := len(u.lines)
	u.lines = fmt.Appendf(u.lines, "omail-unpack: "+format+"\n", args...)
	if len(u.lines) > logBatch && n > 0 {
		u.Log.Write(u.lines[:n]) // whole lines only
		u.lines = u.lines[:copy(u.lines, u.lines[n:])]
	}
}

func (u *Unpacker) flushLog() {
	if len(u.lines) > 0 {
		u.Log.Write(u.lines)
		u.lines = u.lines[:0]
	}
}

// Unpack unpacks file: for user's mailbox when user is not empty (the
// client hook), into the queue otherwise (the proxy hook).
func (u *Unpacker) Unpack(file, user string) int {
	defer u.flushLog()
	if user != "" {
		if err := outbox.CheckEndpoint(user); err != nil {
			u.logf("refusing user %q: %v", user, err)
			return Temporary
		}
	}
	if fi, err := os.Stat(u.Home); err != nil || !fi.IsDir() {
		u.logf("OMAIL_HOME %s is not a directory", u.Home)
		return Temporary
	}
	seen := filepath.Join(u.Home, SeenDir)
	if err := os.MkdirAll(seen, 0o750); err != nil {
		u.logf("%v", err)
		return Temporary
	}
	// One unpacker at a time: two copies of one bundle handed over at
	// once must not both deliver.
	unlock, err := lockfile.Lock(filepath.Join(seen, ".lock"))
	if err != nil {
		u.logf("%v", err)
		return Temporary
	}
	defer unlock()
	u.expire(seen)

	f, err := os.Open(file)
	if err != nil {
		u.logf("%v", err)
		return Temporary
	}
	defer f.Close()
	var r *bundle.Reader
	if user == "" {
		r, err = u.openVerified(f)
	} else {
		r, err = openSealed(f)
	}
	if errors.Is(err, bundle.ErrDamaged) {
		return u.quarantine(file, err)
	}
	if err != nil {
		u.logf("%s: %v", file, err)
		return Temporary
	}
	defer r.Close()
	// The decoder has its window now: the heap holding it (and r) gets
	// huge pages for the bytes about to be written into it.
	adviseHugePages(unsafe.Pointer(r))
	h := r.Header
	done := filepath.Join(seen, h.ID)
	part := done + ".part"
	if _, err := os.Stat(done); err == nil {
		u.logf("bundle %s: %s: unpacked before; removing this copy", h.ID, file)
		if err := removeIfThere(part); err != nil {
			u.logf("%v", err)
			return Temporary
		}
		return u.finish(file)
	}
	if user != "" && !h.Legacy && h.Endpoint != user {
		u.logf("bundle %s: packed for endpoint %s, delivered to user %s as OCMP asks", h.ID, h.Endpoint, user)
	}
	if user != "" {
		err = u.client(r, user, part)
	} else {
		err = u.proxy(r, part)
	}
	if user != "" && errors.Is(err, bundle.ErrDamaged) {
		// The client has cut the mailbox back: nothing from FILE was
		// delivered, and its journal has nothing left to undo. (The
		// proxy verified the whole file first; damage now is a file
		// changed under it: tried again, that is quarantined.)
		if err := removeIfThere(part); err != nil {
			u.logf("%v", err)
			return Temporary
		}
		return u.quarantine(file, err)
	}
	if err != nil {
		u.logf("bundle %s: %s: %v; will try again", h.ID, file, err)
		return Temporary
	}
	n := r.Count()
	mark := fmt.Sprintf("%s %s %d %d\n", h.Endpoint, user, n, u.now().Unix())
	if err := safefile.WriteFile(done, []byte(mark), 0o640); err != nil {
		u.logf("bundle %s: recording it: %v", h.ID, err)
		return Temporary
	}
	if err := removeIfThere(part); err != nil {
		u.logf("%v", err)
		return Temporary
	}
	u.crash("unpack-marked")
	what := "queued"
	if user != "" {
		what = "delivered to " + user
	}
	u.logf("bundle %s: endpoint %s: %d messages %s", h.ID, h.Endpoint, n, what)
	return u.finish(file)
}

// openVerified reads the whole of f to check it, then opens it again to
// deliver: the proxy hook reads every file twice, since a message in the
// queue cannot be taken back when a later part of its bundle turns out
// damaged.
func (u *Unpacker) openVerified(f *os.File) (*bundle.Reader, error) {
	h, _, err := bundle.Verify(f)
	if err == nil && h.Legacy {
		err = &bundle.DamagedError{Why: "an mbox fragment: only the client hook reads those"}
	}
	if err != nil {
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	r, err := bundle.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("second reading: %v", err) // not ErrDamaged: it was intact
	}
	return r, nil
}

// openSealed opens f for the client hook, which decompresses it once:
// the seal, checked here on the raw file, finds a file cut or changed on
// its way before anything is appended; damage in the stream itself
// (only a faulty packer makes that) is found while appending, and the
// mailbox is then cut back to where it was.
func openSealed(f *os.File) (*bundle.Reader, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	r, err := bundle.NewReader(f)
	if err != nil {
		return nil, err
	}
	if err := r.CheckSeal(f, fi.Size()); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// finish removes FILE once everything in it is durable.
func (u *Unpacker) finish(file string) int {
	if err := safefile.Remove(file); err != nil && !errors.Is(err, fs.ErrNotExist) {
		u.logf("removing %s: %v", file, err)
		return Temporary
	}
	return OK
}

func removeIfThere(path string) error {
	if err := safefile.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// quarantine moves a damaged file aside, for a person to look at.
func (u *Unpacker) quarantine(file string, why error) int {
	q := filepath.Join(u.Home, QuarantineDir)
	if err := os.MkdirAll(q, 0o750); err != nil {
		u.logf("%s: %v; cannot quarantine it: %v", file, why, err)
		return Temporary
	}
	to := filepath.Join(q, fmt.Sprintf("%s.%d.%d", filepath.Base(file), u.now().Unix(), os.Getpid()))
	if err := moveFile(file, to); err != nil {
		u.logf("%s: %v; cannot quarantine it: %v", file, why, err)
		return Temporary
	}
	u.logf("%s: %v: nothing delivered, moved to %s", file, why, to)
	return Permanent
}

// moveFile renames, or copies and removes across file systems (OCMP's
// download directory need not be on OMAIL_HOME's).
func moveFile(from, to string) error {
	err := safefile.Rename(from, to)
	if !errors.Is(err, syscall.EXDEV) {
		return err
	}
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	if _, err := safefile.WriteFrom(to, in, 0o640); err != nil {
		return err
	}
	return safefile.Remove(from)
}

// expire forgets bundle ids older than Horizon, at most once a day.
func (u *Unpacker) expire(seen string) {
	stamp := filepath.Join(seen, ".expired")
	if fi, err := os.Stat(stamp); err == nil && u.now().Sub(fi.ModTime()) < 24*time.Hour {
		return
	}
	ents, err := os.ReadDir(seen)
	if err != nil {
		return
	}
	n := 0
	for _, e := range ents {
		name := e.Name()
		if !bundle.ValidID(strings.TrimSuffix(name, ".part")) {
			continue
		}
		// A .part journal is progress of a bundle not finished; after
		// the horizon, OCMP has given up on that file long ago.
		fi, err := e.Info()
		if err == nil && u.now().Sub(fi.ModTime()) > Horizon {
			if os.Remove(filepath.Join(seen, name)) == nil {
				n++
			}
		}
	}
	safefile.SyncDir(seen)
	if n > 0 {
		u.logf("forgot %d bundle ids older than %v", n, Horizon)
	}
	now := u.now()
	if f, err := os.Create(stamp); err == nil {
		f.Close()
		os.Chtimes(stamp, now, now)
	}
}

// received is the trace line put on each unpacked message. Its
// parenthesis also marks, in a mailbox, which messages came from which
// bundle (see client's crash recovery).
func (u *Unpacker) received(h bundle.Header, i int) string {
	if u.me == "" {
		me, err := control.New(u.Home).Me()
		if err != nil {
			me = "localhost"
		}
		u.me = me
	}
	if now := u.now(); now.Unix() != u.dateAt || u.date == "" {
		u.date, u.dateAt = now.Format("Mon, 02 Jan 2006 15:04:05 -0700"), now.Unix()
	}
	return "Received: from " + h.Endpoint + " by " + u.me + " with OCMP (omail-unpack bundle " + h.ID +
		" message " + strconv.Itoa(i) + "); " + u.date
}

// proxy puts each message into the queue with its envelope. The part
// journal holds how many messages are queued, durably, so that a re-run
// after a crash or a temporary failure goes on from there.
func (u *Unpacker) proxy(r *bundle.Reader, part string) error {
	start := 0
	if data, err := os.ReadFile(part); err == nil {
		start, _ = strconv.Atoi(strings.TrimSpace(string(data)))
		u.logf("bundle %s: %d messages queued by an earlier run", r.Header.ID, start)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for i := 1; ; i++ {
		m, err := r.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if i <= start {
			continue
		}
		code, err := u.queue(r.Header, i, m)
		if err != nil {
			return err
		}
		switch {
		case code == qexit.OK:
			u.logf("bundle %s: message %d from <%s> to %s: queued", r.Header.ID, i, m.Sender, strings.Join(m.Rcpts, ","))
		case qexit.Permanent(code):
			// The queue will never take it; retrying would hold up the
			// whole bundle for ever. The sender is told, as any MTA
			// would bounce it, and the rest of the bundle goes on.
			u.logf("bundle %s: message %d from <%s> to %s: the queue refuses it permanently (%s): bounced",
				r.Header.ID, i, m.Sender, strings.Join(m.Rcpts, ","), qexit.Describe(code))
			if err := u.bounceRefused(r.Header, i, m, code); err != nil {
				return err
			}
		default:
			return fmt.Errorf("message %d: queue: %s", i, qexit.Describe(code))
		}
		u.crash("unpack-queued")
		if err := safefile.WriteFile(part, []byte(strconv.Itoa(i)+"\n"), 0o640); err != nil {
			return err
		}
		u.crash("unpack-progress")
	}
}

// queue puts one message into the queue: the message (behind a
// Received: line) on the queue program's fd 0, the envelope on its fd 1,
// or the same in this process (qqclient.Open). The envelope is written
// only after the whole message was read intact, so a message that turns
// out damaged is never queued.
func (u *Unpacker) queue(h bundle.Header, i int, m *bundle.Message) (int, error) {
	c, err := qqclient.Open(u.Env, u.Log)
	if err != nil {
		return 0, err
	}
	bw := bufio.NewWriterSize(c, 64<<10)
	bw.WriteString(u.received(h, i) + "\n")
	// c never fails a write, so an error here is reading the bundle.
	_, copyErr := io.Copy(bw, m.Body)
	if copyErr == nil {
		copyErr = bw.Flush()
	}
	if copyErr != nil {
		c.Abort() // no envelope: nothing is queued
		return 0, copyErr
	}
	code, err := c.Commit(&envelope.Envelope{Sender: m.Sender, Rcpts: m.Rcpts})
	if code != 0 {
		u.logf("bundle %s: message %d: %v", h.ID, i+1, err)
	}
	return code, nil
}

// bounceRefused tells the sender of a message the queue refused for
// good. A bounce cannot be bounced: a refused bounce is only logged.
func (u *Unpacker) bounceRefused(h bundle.Header, i int, m *bundle.Message, code int) error {
	if m.Sender == "" || m.Sender == "#@[]" {
		return nil
	}
	me, err := control.New(u.Home).Me()
	if err != nil {
		return err
	}
	c, err := qqclient.Open(u.Env, u.Log)
	if err != nil {
		return err
	}
	now := u.now()
	fmt.Fprintf(c, "From: MAILER-DAEMON@%s (Mail Delivery System)\nTo: %s\nSubject: failure notice\n", me, m.Sender)
	fmt.Fprintf(c, "Date: %s\nAuto-Submitted: auto-replied\nMIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\n", now.Format(time.RFC1123Z))
	fmt.Fprintf(c, "This is omail-unpack at %s.\n\nYour message to\n", me)
	for _, r := range m.Rcpts {
		fmt.Fprintf(c, "    <%s>\n", r)
	}
	fmt.Fprintf(c, "\ncame here from endpoint %s (bundle %s, message %d), and the mail queue\nrefused it for good: %s.\nThis is a permanent error; it was not delivered.\n", h.Endpoint, h.ID, i, qexit.Describe(code))
	qc, err := c.Commit(&envelope.Envelope{Sender: "", Rcpts: []string{m.Sender}})
	if qc != 0 {
		if qexit.Permanent(qc) {
			u.logf("bundle %s: message %d: the bounce was refused too (%v); not bounced", h.ID, i, err)
			return nil
		}
		return fmt.Errorf("queueing a bounce: %v", err)
	}
	return nil
}

// client appends every message to the user's mbox with one Appender:
// one lock, one fsync. The part journal records the mbox's length
// before the append, so that a re-run after a crash can take back what
// the crashed run wrote.
func (u *Unpacker) client(r *bundle.Reader, user, part string) error {
	spool, err := control.New(u.Home).Line("mailspool")
	if err != nil {
		return err
	}
	path := filepath.Join(spool, user)
	a, err := mbox.Open(path)
	if err != nil {
		return err
	}
	skip := map[int]bool{}
	if data, err := os.ReadFile(part); err == nil {
		f := strings.Fields(string(data))
		var old int64
		if len(f) == 2 {
			old, err = strconv.ParseInt(f[0], 10, 64)
		} else {
			err = errors.New("not \"LENGTH SIGNATURE\"")
		}
		if err != nil {
			a.Abort()
			return fmt.Errorf("journal %s: %v", part, err)
		}
		var cut bool
		skip, cut, err = u.recoverMbox(a, r.Header.ID, old, f[1])
		if err != nil {
			a.Abort()
			return err
		}
		if cut {
			// The Appender remembers the length before the cut; open
			// it again so that an Abort cuts to the right place.
			a.Commit()
			if a, err = mbox.Open(path); err != nil {
				return err
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		a.Abort()
		return err
	}
	fi, err := os.Stat(path)
	if err != nil {
		a.Abort()
		return err
	}
	// The length before our append, and a signature of what lies before
	// it, so that a re-run after a crash can tell whether the mailbox was
	// changed meanwhile (a mail reader rewrote it) before it cuts.
	sig, err := mboxSignature(path, fi.Size())
	if err != nil {
		a.Abort()
		return err
	}
	if err := safefile.WriteFile(part, []byte(strconv.FormatInt(fi.Size(), 10)+" "+sig+"\n"), 0o640); err != nil {
		a.Abort()
		return err
	}
	var prefix []string
	for i := 1; ; i++ {
		m, err := r.Next()
		if err == io.EOF {
			break
		}
		if err == nil && !skip[i] {
			rcpt := user
			prefix = prefix[:0]
			if !r.Header.Legacy {
				rcpt = m.Rcpts[0]
				prefix = append(prefix, "Return-Path: <"+m.Sender+">")
			}
			prefix = append(prefix, "Delivered-To: "+rcpt, u.received(r.Header, i))
			err = a.Add(m.Sender, prefix, m.Body, u.now())
			if err == nil {
				u.msgf("bundle %s: message %d from <%s>: appended to %s", r.Header.ID, i, m.Sender, path)
			}
		}
		if err != nil {
			// Cut the mailbox back to where it was: nothing of a damaged
			// bundle stays, and a re-run after trouble starts afresh.
			if aerr := a.Abort(); aerr != nil {
				return fmt.Errorf("%v; %v", err, aerr) // not ErrDamaged: the mailbox needs the journal
			}
			if errors.Is(err, bundle.ErrDamaged) && len(skip) > 0 {
				u.logf("bundle %s: damaged; the messages an earlier run appended to %s before other mail stay there", r.Header.ID, path)
			}
			return err
		}
	}
	u.crash("unpack-appended")
	if err := a.Commit(); err != nil {
		return err
	}
	u.crash("unpack-committed")
	return nil
}

// recoverMbox looks at what a crashed run may have appended after old,
// the mbox's length before it. Our messages carry the bundle's marker in
// their Received: line. When everything after old is ours, it is cut
// off and the bundle delivered again whole (cut is true). When someone
// else appended after the crash, nothing is cut; delivery resumes at
// the last message of ours found, which may have been cut short (the
// one duplicate this rare case costs).
func (u *Unpacker) recoverMbox(a *mbox.Appender, id string, old int64, sig string) (skip map[int]bool, cut bool, err error) {
	f, err := os.OpenFile(a.Path(), os.O_RDWR, 0)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, false, err
	}
	now, err := mboxSignature(a.Path(), min(old, fi.Size()))
	if err != nil {
		return nil, false, err
	}
	if fi.Size() < old || now != sig {
		// Someone rewrote the mailbox since the crashed run (a reader
		// marked mail read, or deleted some): the length we wrote down
		// means nothing now, and cutting there could destroy their mail.
		// Never cut; deliver only the messages of ours not in it.
		have, err := ourMessages(f, 0, fi.Size(), id)
		if err != nil {
			return nil, false, err
		}
		u.logf("bundle %s: %s was rewritten since a crashed run; adding only the %s", id, a.Path(), "messages not in it")
		return have, false, nil
	}
	if fi.Size() == old {
		return map[int]bool{}, false, nil
	}
	br := bufio.NewReaderSize(io.NewSectionReader(f, old, fi.Size()-old), 64<<10)
	last, foreign := 0, false
	inMsg, ours := false, false
	header := 0 // head lines of the current message still to look at
	atStart := true
	tag := "(omail-unpack bundle " + id + " message "
	for {
		l, err := br.ReadSlice('\n')
		start := atStart
		atStart = err == nil
		switch {
		case start && len(l) > 5 && string(l[:5]) == "From ":
			// mboxrd quotes every other "From " at a line start, so this
			// begins a message.
			if inMsg && !ours {
				foreign = true
			}
			inMsg, ours, header = true, false, 8
		case start && header > 0:
			header--
			s := string(l)
			if len(l) == 1 {
				header = 0
			} else if j := strings.Index(s, tag); j >= 0 && strings.HasPrefix(s, "Received: ") {
				f := strings.Fields(s[j+len(tag):])
				if len(f) > 0 {
					if n, _ := strconv.Atoi(strings.TrimSuffix(f[0], ");")); n > last {
						last = n
					}
				}
				ours, header = true, 0
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil && err != bufio.ErrBufferFull {
			return nil, false, err
		}
	}
	if inMsg && !ours {
		foreign = true
	}
	if !foreign {
		if err := f.Truncate(old); err != nil {
			return nil, false, err
		}
		if err := f.Sync(); err != nil {
			return nil, false, err
		}
		u.logf("bundle %s: took back %d bytes a crashed run appended to %s", id, fi.Size()-old, a.Path())
		return map[int]bool{}, true, nil
	}
	if last == 0 {
		last = 1
	}
	u.logf("bundle %s: %s changed since a crashed run; resuming at message %d", id, a.Path(), last)
	skip = map[int]bool{}
	for i := 1; i < last; i++ {
		skip[i] = true
	}
	return skip, false, nil
}

// mboxSignature identifies the first n bytes of a mailbox: its inode, n,
// and a SHA-256 of the (up to) 4 KiB before n.
func mboxSignature(path string, n int64) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	var ino uint64
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		ino = st.Ino
	}
	from := max(0, n-4096)
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, from, n-from)); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d:%d:%x", ino, n, h.Sum(nil)[:16]), nil
}

// ourMessages finds the messages of bundle id already in a mailbox, by
// the Received: line omail-unpack puts on each.
func ourMessages(f *os.File, from, to int64, id string) (map[int]bool, error) {
	have := map[int]bool{}
	tag := "(omail-unpack bundle " + id + " message "
	br := bufio.NewReaderSize(io.NewSectionReader(f, from, to-from), 64<<10)
	atStart := true
	for {
		l, err := br.ReadSlice('\n')
		if atStart && len(l) > 10 && string(l[:10]) == "Received: " {
			if j := strings.Index(string(l), tag); j >= 0 {
				fs := strings.Fields(string(l[j+len(tag):]))
				if len(fs) > 0 {
					if n, err := strconv.Atoi(strings.TrimSuffix(fs[0], ");")); err == nil {
						have[n] = true
					}
				}
			}
		}
		atStart = err == nil
		if err == io.EOF {
			return have, nil
		}
		if err != nil && err != bufio.ErrBufferFull {
			return nil, err
		}
	}
}
