package mbox

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Locking, and the record that lets the next writer repair a crash.
//
// An omail writer takes the fcntl (OFD) lock first and the dotlock only
// while it holds it, and removes its dotlock before it lets the fcntl
// lock go. The kernel drops a dead process's fcntl lock, so the fcntl
// lock is the one thing two omail writers cannot both hold, and every
// change omail makes to MBOX.lock happens under it. An omail dotlock
// that an omail writer finds while holding the fcntl lock was therefore
// left by a writer that died holding both: nobody else can be using it.
//
// The dotlock is that writer's record. It says, on one line:
//
//	PID HOST LENGTH BOOT START INODE
//
// the writer's pid, the host's name, the mailbox's length where its
// appending starts (20 digits, rewritten in place when Recover cuts the
// file shorter; -1, as "-0000000000000000001", for a lock taken with
// OpenLock, which appends nothing: no cut), the kernel's boot id, the process's start time (so that
// a reused pid is not taken for the writer) and the mailbox's inode. It
// is written to an unnamed file (O_TMPFILE) and linked into place, so it
// never exists without its content. The writer that finds a dead
// writer's lock cuts the mailbox back to LENGTH: what the dead writer
// appended (a torn copy, or whole ones it had not yet unlocked) was never
// reported delivered, because Commit reports success only after the
// dotlock is gone. docs/INTERNALS.md, "The mbox dotlock", has the
// argument.

// holder is what a dotlock says about the writer that made it.
type holder struct {
	lockIno uint64 // the dotlock's own inode, as judged
	raw     string // and its content
	pid     int
	omail   bool  // an omail lock (pid and this host's name at least)
	length  int64 // -1: no length recorded (an older omail's lock)
	boot    string
	start   string
	mboxIno uint64
}

// lock takes both locks, trying without blocking and pausing between
// tries (10ms, doubling up to 320ms) until LockTimeout has passed.
func (a *Appender) lock() error {
	deadline := time.Now().Add(LockTimeout)
	pause := 10 * time.Millisecond
	for {
		held, err := a.tryLock()
		if err != nil {
			// A locking error other than busy: Open returns it holding no lock; nothing written.
			return err
		}
		if held {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: %s", ErrLocked, a.path)
		}
		time.Sleep(pause)
		if pause < 200*time.Millisecond {
			pause *= 2
		}
	}
}

// tryLock takes the fcntl lock and then the dotlock without waiting. It
// reports false, holding neither, when someone else holds one of them.
func (a *Appender) tryLock() (bool, error) {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart}
	if err := unix.FcntlFlock(a.f.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
			return false, nil
		}
		// e.g. ENOLCK on a file system without locks: nothing held, nothing written.
		return false, fmt.Errorf("mbox %s: fcntl lock: %w", a.path, err)
	}
	ok, err := a.tryDotlock()
	if err != nil || !ok {
		a.releaseFcntl()
		return false, err
	}
	return true, nil
}

func (a *Appender) releaseFcntl() {
	lk := unix.Flock_t{Type: unix.F_UNLCK, Whence: io.SeekStart}
	unix.FcntlFlock(a.f.Fd(), unix.F_OFD_SETLK, &lk)
}

// tryDotlock takes MBOX.lock, the fcntl lock held. A lock there that a
// dead omail writer left is taken over (its append cut back); one older
// than DotlockStale is removed; any other is busy.
func (a *Appender) tryDotlock() (bool, error) {
	name := a.path + ".lock"
	for attempt := 0; attempt < 2; attempt++ {
		st, err := a.f.Stat()
		if err != nil {
			// fstat of an open file fails only with EIO: nothing written.
			return false, err
		}
		err = a.makeDotlock(name, st)
		if err == nil {
			return true, nil
		}
		if errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS) {
			// No right to create files next to the mailbox (a
			// 1777-less /var/mail when delivering as the user, a
			// read-only directory): the fcntl lock alone has to do,
			// unless a dotlock is there. One we can neither take over
			// nor remove is busy, even a dead writer's: were we to
			// append after its copy, a writer who may remove it (root)
			// would cut back to its record, our mail with it.
			lst, lerr := os.Lstat(name)
			if lerr != nil {
				return true, nil
			}
			if readHolder(name, lst, st).dead() {
				// Waiting will not help: defer at once.
				return false, fmt.Errorf("%w: %s: a dead writer's dotlock we may not remove", ErrLocked, a.path)
			}
			return false, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			// EIO, ENOSPC...: no lock is held, nothing written; the delivery defers.
			return false, fmt.Errorf("mbox %s: dotlock: %w", a.path, err)
		}
		cleared, err := a.clearAbandoned(name, st)
		if err != nil {
			// The dead writer's append could not be cut, or its lock not removed: nothing held; the delivery defers.
			return false, err
		}
		if !cleared {
			return false, nil
		}
	}
	// A lock came back twice between removal and creation: busy, the lock loop tries again.
	return false, nil
}

// clearAbandoned judges the dotlock name, held by someone else, the
// fcntl lock held and st the mailbox's state under it: one a dead omail
// writer left, or one older than DotlockStale, is taken over. cleared
// is true when the lock is gone (taken over, or let go meanwhile), false
// when it is someone's to keep.
func (a *Appender) clearAbandoned(name string, st os.FileInfo) (cleared bool, err error) {
	lst, err := os.Lstat(name)
	if err != nil {
		return true, nil // gone meanwhile: its holder let it go
	}
	h := readHolder(name, lst, st)
	if !h.dead() && !stale(lst) {
		return false, nil
	}
	if err := a.takeOver(name, h, st); err != nil {
		return false, err
	}
	return true, nil
}

// stale reports whether the dotlock lst has not been modified for
// DotlockStale.
func stale(lst os.FileInfo) bool { return time.Since(lst.ModTime()) > DotlockStale }

// makeDotlock links a file holding our record to name. An error wrapping
// fs.ErrExist means the lock is held.
func (a *Appender) makeDotlock(name string, st os.FileInfo) error {
	return a.Hook.Op("dotlock-link", func() error {
		// Mode 644: it holds nothing secret, and a writer of another
		// uid that may not remove it can read that its writer is dead
		// and defer at once (tryDotlock).
		length := st.Size()
		if a.lockOnly {
			length = -1 // no length: nothing to cut after our death (OpenLock)
		}
		content, off := lockContent(length, sysIno(st))
		fd, err := unix.Open(filepath.Dir(name), unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EINVAL) {
			return a.createDotlock(name, content, off)
		}
		if err != nil {
			// EACCES: no dotlock here (tryDotlock); EIO, ENOSPC: the delivery defers.
			return &fs.PathError{Op: "open", Path: filepath.Dir(name), Err: err}
		}
		f := os.NewFile(uintptr(fd), name)
		if _, err := f.WriteString(content); err != nil {
			// Nothing has a name yet: closing drops it.
			f.Close()
			return err
		}
		err = unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), unix.AT_FDCWD, name, unix.AT_SYMLINK_FOLLOW)
		if errors.Is(err, unix.ENOENT) && !procMounted() {
			f.Close()
			return a.createDotlock(name, content, off)
		}
		if err != nil {
			// EEXIST (held), or EIO: nothing named; closing drops the file.
			f.Close()
			return &fs.PathError{Op: "link", Path: name, Err: err}
		}
		a.dotlock, a.lockf, a.lockOff = name, f, off
		return nil
	})
}

// createDotlock is makeDotlock where unnamed files cannot be linked (a
// file system without them, no /proc): the lock is created by name and
// then written, so that a kill in between leaves an empty lock, which
// only its age removes.
func (a *Appender) createDotlock(name, content string, off int64) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o644)
	if err != nil {
		// EEXIST (held), EACCES (no dotlock here), EIO: judged by tryDotlock; nothing made.
		return err
	}
	a.dotlock, a.lockf, a.lockOff = name, f, off
	if _, err := f.WriteString(content); err != nil {
		// ENOSPC or EIO: the lock goes again, nothing else was touched.
		a.removeDotlock()
		return err
	}
	return nil
}

// procMounted reports whether /proc/self is there to link unnamed
// files through.
func procMounted() bool {
	_, err := os.Stat("/proc/self/fd")
	return err == nil
}

// takeOver removes a dotlock that tryDotlock found dead or stale, after
// cutting the mailbox back to where a dead omail writer's append began.
func (a *Appender) takeOver(name string, h holder, st os.FileInfo) error {
	if to, ok := h.cutTo(st); ok {
		if ok, err := a.looksAppended(to); err != nil || !ok {
			if err != nil {
				// EIO reading the mailbox: nothing changed, the delivery defers.
				return err
			}
			Logf("mbox %s: lock of dead process %d says it appended from byte %d, but no message starts there: nothing cut", a.path, h.pid, to)
		} else {
			if err := a.Hook.Op("dotlock-takeover-truncate", func() error { return a.f.Truncate(to) }); err != nil {
				// The lock stays, and names what to cut: the next try cuts.
				return fmt.Errorf("mbox %s: cannot cut back to %d bytes: %w", a.path, to, err)
			}
			if err := a.Hook.Op("dotlock-takeover-fsync", a.f.Sync); err != nil {
				// As above: cutting again to the same length is harmless.
				return fmt.Errorf("mbox %s: cannot cut back to %d bytes: %w", a.path, to, err)
			}
			Logf("mbox %s: cut %d bytes appended by process %d, which died holding the lock", a.path, st.Size()-to, h.pid)
		}
	}
	// Only the lock we judged: a program that is not omail may have
	// replaced it meanwhile (and ext4 gives a freed inode number out
	// again at once: the content must be the same too).
	if lst, err := os.Lstat(name); err == nil && sysIno(lst) == h.lockIno && readHolder(name, lst, st).raw == h.raw {
		if err := a.Hook.Op("dotlock-takeover-remove", func() error { return os.Remove(name) }); err != nil && !errors.Is(err, fs.ErrNotExist) {
			if errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS) {
				// A directory we may not change: busy (see tryDotlock),
				// until someone who may removes the lock.
				return fmt.Errorf("%w: %s: a dead writer's dotlock we may not remove", ErrLocked, a.path)
			}
			// EIO: nothing held (the cut, if any, is durable and harmless to repeat); the delivery defers.
			return fmt.Errorf("mbox %s: cannot remove a dead lock: %w", a.path, err)
		}
	}
	return nil
}

// looksAppended reports whether what lies at offset to is where Add
// began a message: "From ", perhaps after the one or two newlines that
// separate it from what was there. A record that points elsewhere is
// not trusted with a cut.
func (a *Appender) looksAppended(to int64) (bool, error) {
	b := make([]byte, 2+len(fromLine))
	n, err := a.f.ReadAt(b, to)
	if err != nil && err != io.EOF {
		// EIO: the takeover fails before anything is cut; the delivery defers.
		return false, err
	}
	s := string(b[:n])
	for i := 0; i < 2 && strings.HasPrefix(s, "\n"); i++ {
		s = s[1:]
	}
	if s == "" {
		// Only the separator, up to the end of the file.
		return n > 0 && n < len(b), nil
	}
	return strings.HasPrefix(s, fromLine) || strings.HasPrefix(fromLine, s), nil
}

// record rewrites the length in our dotlock, after Recover cut the file
// shorter than it was at Open: a writer taking over after our death
// must cut to where our appending starts.
func (a *Appender) record(length int64) error {
	if a.lockf == nil || a.lockOff < 0 || a.lockOnly {
		return nil
	}
	return a.Hook.Op("dotlock-record", func() error {
		_, err := a.lockf.WriteAt([]byte(fmt.Sprintf("%020d", length)), a.lockOff)
		return err
	})
}

// removeDotlock removes our dotlock, if the name is still ours.
func (a *Appender) removeDotlock() error {
	if a.lockf == nil {
		return nil
	}
	mine, err := a.lockf.Stat()
	if err == nil {
		var lst os.FileInfo
		lst, err = os.Lstat(a.dotlock)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			err = nil // someone removed it (a person, a stale-lock rule): nothing of ours to remove
		case err == nil && os.SameFile(mine, lst):
			err = a.Hook.Op("dotlock-remove", func() error { return os.Remove(a.dotlock) })
		}
	}
	// An error (EIO) fails Commit: our record may still be there, and a
	// takeover after our death may cut this copy, which must then not
	// have been reported delivered.
	a.lockf.Close()
	a.lockf, a.dotlock = nil, ""
	return err
}

// unlock removes the dotlock, then closes the file, which releases the
// fcntl lock (closing the last descriptor of an open file description
// releases its OFD lock): never the other way round, or a next writer
// would find our lock and take us for dead once we are gone.
func (a *Appender) unlock() error {
	err := a.removeDotlock()
	if cerr := a.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// readHolder reads the dotlock name, lst being what Lstat said of it.
// Only a regular file owned by root or by the mailbox's owner (st) is
// taken for an omail lock: in a world-writable spool (/var/mail 1777)
// anyone can make MBOX.lock, and a forged record must not make us cut
// someone's mail.
func readHolder(name string, lst, st os.FileInfo) holder {
	h := holder{length: -1, lockIno: sysIno(lst)}
	if !lst.Mode().IsRegular() || !trustedOwner(lst, st) {
		return h
	}
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		// An unreadable dotlock is judged by its age alone.
		return h
	}
	b := make([]byte, 512)
	n, _ := f.Read(b)
	f.Close()
	p := parseHolder(b[:n])
	p.lockIno, p.raw = h.lockIno, string(b[:n])
	return p
}

// maxPid is the kernel's largest pid (PID_MAX_LIMIT): a bigger number
// in a lock is not a pid.
const maxPid = 1 << 22

// trustedOwner reports whether the lock lst is owned by root or by the
// owner of the mailbox st.
func trustedOwner(lst, st os.FileInfo) bool {
	l, ok1 := lst.Sys().(*syscall.Stat_t)
	m, ok2 := st.Sys().(*syscall.Stat_t)
	return ok1 && ok2 && (l.Uid == 0 || l.Uid == m.Uid)
}

// parseHolder reads a dotlock's content: ours (lockContent), an older
// omail's ("PID HOST"), or anything else (not an omail lock).
func parseHolder(b []byte) holder {
	h := holder{length: -1}
	fields := strings.Fields(string(b))
	if len(fields) < 2 || fields[1] != hostname() {
		return h
	}
	pid, err := strconv.Atoi(fields[0])
	if err != nil || pid <= 0 || pid > maxPid {
		return h
	}
	h.pid, h.omail = pid, true
	if len(fields) == 6 {
		h.boot, h.start = fields[3], fields[4]
		l, lerr := strconv.ParseInt(fields[2], 10, 64)
		i, ierr := strconv.ParseUint(fields[5], 10, 64)
		if lerr == nil && ierr == nil && l >= 0 {
			h.length, h.mboxIno = l, i
		}
	}
	return h
}

// dead reports whether the lock is an omail lock of this host whose
// process is gone: killed holding it. A lock of an earlier boot is dead
// too. Anything else (another program's dotlock, another host's, a live
// process) is left to the age rule.
func (h holder) dead() bool {
	if !h.omail {
		return false
	}
	if h.boot != "" && h.boot != bootID() {
		return true
	}
	if unix.Kill(h.pid, 0) == unix.ESRCH {
		return true
	}
	state, start := processStat(h.pid)
	// A zombie has let go of its files, the fcntl lock with them; a
	// different start time is another process that got the pid. A
	// process we cannot see (/proc mounted hidepid) is taken as alive.
	return state == "Z" || state == "X" || start != "" && h.start != "" && h.start != "-" && start != h.start
}

// cutTo is the length to cut the mailbox back to: where the dead writer
// began appending, when its lock is a record of this boot, for this
// mailbox, and the mailbox is longer.
func (h holder) cutTo(st os.FileInfo) (int64, bool) {
	if !h.dead() || h.length < 0 || h.boot != bootID() || h.boot == "-" || h.mboxIno != sysIno(st) {
		return 0, false
	}
	return h.length, st.Size() > h.length
}

// lockContent is our record (see the top of this file), and the offset
// of its length field.
func lockContent(length int64, ino uint64) (string, int64) {
	boot := bootID()
	if boot == "" {
		boot = "-"
	}
	head := strconv.Itoa(os.Getpid()) + " " + hostname() + " "
	return head + fmt.Sprintf("%020d", length) + " " + boot + " " + ownStart() + " " + strconv.FormatUint(ino, 10) + "\n", int64(len(head))
}

// hostname is this host's name, or "" when it has none (then no lock is
// taken for ours: the fields would not line up).
func hostname() string {
	h, _ := os.Hostname()
	return h
}

// bootID is the kernel's id of this boot, or "" when unknown. A lock
// of another boot is never used to cut: its removal may not have
// reached the disk before a power cut, though its delivery was recorded.
var bootID = sync.OnceValue(func() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
})

var ownStart = sync.OnceValue(func() string {
	if _, s := processStat(os.Getpid()); s != "" {
		return s
	}
	return "-"
})

// processStat is process pid's state (R, S, Z...) and when it started,
// in clock ticks since boot (fields 3 and 22 of /proc/PID/stat), or ""
// when unknown.
func processStat(pid int) (state, start string) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", ""
	}
	// The command name (field 2) may hold spaces and parentheses: the
	// fields after it are counted from its last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return "", ""
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return "", ""
	}
	return f[0], f[19]
}

func sysIno(st os.FileInfo) uint64 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return s.Ino
	}
	return 0
}

// Logf reports a mailbox repaired at Open; a program may send it to its log.
var Logf = func(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}
