package queue

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"omail/lib/safefile"
)

// A committed message is one file, todo/ID (Pending.Commit):
//
//	MESSAGE  STATE  FOOTER
//
// MESSAGE is the message's bytes, STATE the envelope as a state file
// (state.go), and FOOTER 29 bytes, "OMQ2", the lengths of MESSAGE and
// STATE in 16 and 8 lower-case hex digits, and a newline. One file makes
// the commit cost one file fsync and one directory fsync.
//
// A deliverer locks the entry and links todo/ID to mess/ID under that
// lock (the same inode: LinkLocked), fsyncing mess/: the name is the
// mark that an attempt has begun. An attempt whose recipients are all
// local delivers from inside the file, telling the transport the
// message's length, and when every recipient is done removes todo/ID:
// nothing else is written. When an attempt leaves something to remember
// (a deferral, a bounce), or a transport must read the file whole, the
// entry is unfolded: the state, with the message's length, goes to
// info/ and todo/ID is removed (SaveState), then the file is cut back to
// the message (Trim). Every step can be repeated after a crash: info/ is
// written before the file is cut, and whoever reads info/ cuts the file
// again if it is longer than the length recorded there.
//
// An envelope file of the older layout (a message committed by an omail
// that wrote mess/ID and an envelope-only todo/ID) ends with the state's
// end record, a NUL; a single-file entry ends with the footer's newline.
// Deliverers read both.

const (
	footerMagic = "OMQ2"
	footerLen   = len(footerMagic) + 16 + 8 + 1
	maxStateLen = 1<<32 - 1 // what 8 hex digits can say
)

// appendFooter returns state followed by the footer for a message of
// msgLen bytes.
func appendFooter(state []byte, msgLen, stateLen int64) []byte {
	return fmt.Appendf(state, "%s%016x%08x\n", footerMagic, msgLen, stateLen)
}

// parseFooter reads a footer from the last footerLen bytes of a file of
// size bytes; ok is false when they are not a footer consistent with
// that size.
func parseFooter(b []byte, size int64) (msgLen, stateLen int64, ok bool) {
	if len(b) != footerLen || string(b[:4]) != footerMagic || b[footerLen-1] != '\n' {
		return 0, 0, false
	}
	m, err1 := parseHex(b[4:20])
	s, err2 := parseHex(b[20:28])
	if err1 != nil || err2 != nil || m < 1 || s < 1 || m > size || s > size || m+s+int64(footerLen) != size {
		return 0, 0, false
	}
	return m, s, true
}

// parseHex parses lower-case hex digits only (no sign, no prefix).
func parseHex(b []byte) (int64, error) {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return 0, errors.New("not hex")
		}
	}
	return strconv.ParseInt(string(b), 16, 64)
}

// readTodo reads the state of the todo file open as fd (size bytes):
// for a single-file entry the STATE part and the message's length, for
// an older envelope-only file its whole content and msgLen -1. buf is
// reused for the bytes when it is large enough.
func readTodo(fd int, size int64, buf []byte) (state []byte, msgLen int64, err error) {
	if size >= int64(footerLen) && lastByte(fd, size) == '\n' {
		var f [footerLen]byte
		if err := preadFull(fd, f[:], size-int64(footerLen)); err != nil {
			return nil, 0, err
		}
		m, s, ok := parseFooter(f[:], size)
		if !ok {
			return nil, 0, corrupt("bad footer")
		}
		if int64(cap(buf)) < s {
			buf = make([]byte, s)
		}
		buf = buf[:s]
		if err := preadFull(fd, buf, m); err != nil {
			return nil, 0, err
		}
		return buf, m, nil
	}
	return nil, -1, nil
}

// lastByte is the file's last byte, or 0 when it cannot be read (the
// caller then reads the file as an older envelope file, and ParseState
// judges it).
func lastByte(fd int, size int64) byte {
	var b [1]byte
	if preadFull(fd, b[:], size-1) != nil {
		return 0
	}
	return b[0]
}

// preadFull reads len(b) bytes at off; a short file is damage.
func preadFull(fd int, b []byte, off int64) error {
	for len(b) > 0 {
		n, err := unix.Pread(fd, b, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return corrupt("file shorter than its footer says")
		}
		b, off = b[n:], off+int64(n)
	}
	return nil
}

// ReadTodo returns the state in todo/id and, for a single-file entry, the
// length of the message before it (-1 for an older envelope-only file).
// A missing file is an error for which errors.Is(err, fs.ErrNotExist)
// holds.
func (q *Queue) ReadTodo(id string) (state []byte, msgLen int64, err error) {
	r := q.NewReader()
	defer r.Close()
	return r.ReadEntry(DirTodo, id)
}

// ReadTodoFile is ReadTodo for the entry open as f: the deliverer's lock
// on todo/ID, read without opening it again.
func ReadTodoFile(f *os.File) (state []byte, msgLen int64, err error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, -1, err
	}
	state, msgLen, err = readTodo(int(f.Fd()), fi.Size(), nil)
	if err != nil {
		return nil, -1, &fs.PathError{Op: "read", Path: f.Name(), Err: err}
	}
	if msgLen < 0 {
		// An older envelope-only file: its whole content.
		if state, err = io.ReadAll(io.NewSectionReader(f, 0, fi.Size())); err != nil {
			return nil, -1, err
		}
	}
	return state, msgLen, nil
}

// LinkMessage gives a single-file entry todo/id its name in mess/, where
// deliverers lock and read messages. It reports whether mess/id is now
// that entry's file: false when todo/id is gone (finished meanwhile) or
// is not a single-file entry (an older envelope file whose message is
// missing: damage, for the caller to set aside). Deliverers use
// LinkLocked, under the entry's lock.
func (q *Queue) LinkMessage(id string) (bool, error) {
	f, err := os.Open(q.Path(DirTodo, id))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	ok, _, err := q.LinkLocked(f, id)
	return ok, err
}

// LinkLocked is LinkMessage for the deliverer holding the flock of
// todo/id, open as f (the same inode as mess/id, so the same lock every
// deliverer takes). made reports that this call gave the entry its name
// in mess/, durably (mess/ fsynced before it returns): the mark that no
// attempt has delivered anything of the message before this one. Every
// attempt makes or finds that name under the lock before it delivers, so
// an attempt that finds it may follow a crashed one and must look for
// earlier copies (lib/local/once.go); the one that makes it knows it is
// the first. Without the fsync a power loss could keep a delivery and
// lose the name, and the retry would take itself for the first.
func (q *Queue) LinkLocked(f *os.File, id string) (ok, made bool, err error) {
	todo, mess := q.Path(DirTodo, id), q.Path(DirMess, id)
	fi, err := f.Stat()
	if err != nil {
		return false, false, err
	}
	same := func() (bool, bool, error) {
		mi, err := os.Stat(mess)
		if err != nil {
			return false, false, err
		}
		if !os.SameFile(fi, mi) {
			return false, false, fmt.Errorf("%s is not the message of %s", mess, todo)
		}
		return true, false, nil
	}
	if _, err := os.Lstat(mess); err == nil {
		return same()
	}
	if _, msgLen, err := readTodo(int(f.Fd()), fi.Size(), nil); err != nil || msgLen < 0 {
		return false, false, nil
	}
	err = q.Crash.Op("queue-message-link", func() error { return os.Link(todo, mess) })
	switch {
	case errors.Is(err, fs.ErrExist):
		// Linked meanwhile by a caller of LinkMessage, which holds no
		// lock: make sure it is this entry's file.
		return same()
	case errors.Is(err, fs.ErrNotExist):
		return false, false, nil // todo/id finished meanwhile
	case err != nil:
		return false, false, err
	}
	// A second name of todo/ID's file, which its commit made durable: the
	// directory's fsync is enough, whatever the file system.
	if err := q.Crash.Op("queue-message-dirsync", func() error { return safefile.SyncDirEntries(q.Path(DirMess, "")) }); err != nil {
		// The name stays: the retry finds it and searches the mailboxes
		// before delivering, as after a crash here.
		return false, false, err
	}
	q.Crash.At("queue-message-linked")
	return true, true, nil
}

// Trim cuts mess/ID, open and locked as f, back to the message's length
// recorded in st, removing the envelope that a single-file entry carried
// after it. A state without a recorded length (an older entry) or a file
// already cut is left alone; a file shorter than the length is damage.
func (q *Queue) Trim(f *os.File, st *State) error {
	if st.MessageLen <= 0 {
		return nil
	}
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	switch {
	case fi.Size() == st.MessageLen:
		return nil
	case fi.Size() < st.MessageLen:
		return corrupt(fmt.Sprintf("message file has %d bytes, its state says %d", fi.Size(), st.MessageLen))
	}
	q.Crash.At("queue-trim")
	// f is open for reading (the lock); cut the same file by its name,
	// which nobody else changes while we hold the lock.
	return q.Crash.Op("queue-trim-truncate", func() error { return os.Truncate(q.Path(DirMess, st.ID), st.MessageLen) })
}

// SaveState writes st durably to info/, and then, the first time (its
// state was read from todo/), removes todo/ID durably: an envelope must
// never come back after a crash once info/ has moved on.
func (q *Queue) SaveState(st *State) error {
	if err := q.Crash.Op("queue-info-write", func() error { return safefile.WriteFile(q.Path(DirInfo, st.ID), st.Marshal(), 0o640) }); err != nil {
		return err
	}
	if st.Dir == DirTodo {
		err := q.Crash.Op("queue-todo-unlink", func() error { return safefile.Remove(q.Path(DirTodo, st.ID)) })
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	st.Dir = DirInfo
	return nil
}

// Unfold finishes taking a single-file entry apart, for the deliverer
// holding mess/ID's lock (f) after ReadTodo gave st and the message's
// length: the state goes to info/ with that length, todo/ID goes, and the
// file is cut back to the message. Each step may be repeated after a
// crash (see the top of this file).
func (q *Queue) Unfold(f *os.File, st *State, msgLen int64) error {
	st.MessageLen = msgLen
	if err := q.SaveState(st); err != nil {
		return err
	}
	return q.Trim(f, st)
}

// OpenMessage opens message id wherever it is: mess/ID, cut to the length
// its state records, or inside a single-file entry in todo/ no deliverer
// has taken yet. It is for readers outside a delivery (tests, tools);
// deliverers use the locked file.
func (q *Queue) OpenMessage(id string) (*io.SectionReader, io.Closer, error) {
	if _, msgLen, err := q.ReadTodo(id); err == nil && msgLen >= 0 {
		f, err := os.Open(q.Path(DirTodo, id))
		if err != nil {
			return nil, nil, err
		}
		return io.NewSectionReader(f, 0, msgLen), f, nil
	}
	f, err := os.Open(q.Path(DirMess, id))
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	size := fi.Size()
	if data, err := os.ReadFile(q.Path(DirInfo, id)); err == nil {
		if st, err := ParseState(id, data); err == nil && st.MessageLen > 0 && st.MessageLen < size {
			size = st.MessageLen
		}
	}
	return io.NewSectionReader(f, 0, size), f, nil
}
