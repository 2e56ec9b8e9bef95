package unpacker

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"omail/lib/bundle"
	"omail/lib/clock"
	"omail/lib/control"
	"omail/lib/mbox"
	"omail/lib/seen"
)

// client appends every message to the user's mbox with one Appender:
// one lock, one fsync. The progress journal records the mbox's length
// before the append, so that a re-run after a crash can take back what
// the crashed run wrote.
func (u *Unpacker) client(r *bundle.Reader, user string, st *seen.Store) error {
	spool, err := control.New(u.Home).Line("mailspool")
	if err != nil {
		return err
	}
	path := filepath.Join(spool, user)
	if err := u.ownMailbox(path, user); err != nil {
		return fmt.Errorf("mailbox %s: %v", path, err)
	}
	a, err := u.openMbox(path)
	if err != nil {
		return err
	}
	skip := map[int]bool{}
	data, err := st.Progress(r.Header.ID)
	journaled, fresh := err == nil, false
	if journaled {
		j, err := parseJournal(data)
		if err != nil {
			a.Abort()
			return fmt.Errorf("journal %s: %v", st.ProgressFile(r.Header.ID), err)
		}
		var cut bool
		skip, cut, fresh, err = u.recoverMbox(a, r.Header.ID, j.length, j.sig)
		if err != nil {
			a.Abort()
			return err
		}
		for n := range j.skip {
			skip[n] = true
		}
		if cut {
			// The Appender remembers the length before the cut; open
			// it again so that an Abort cuts to the right place.
			a.Commit()
			if a, err = u.openMbox(path); err != nil {
				return err
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		a.Abort()
		return err
	}
	if !journaled || fresh {
		// The length before our append, and a signature of what lies
		// before it, so that a re-run after a crash can tell whether the
		// mailbox was changed meanwhile (a mail reader rewrote it) before
		// it cuts, and the messages of ours it holds already. A journal
		// already there stays as it is when it still says where the
		// first run began (the mailbox is back there, or other mail was
		// appended after it, and the next run must decide again as this
		// one did, should this one fail too); after a rewrite it is
		// written afresh, with what this run skips, so that the next run
		// can cut back whatever this one leaves torn.
		fi, err := a.File().Stat()
		if err != nil {
			a.Abort()
			return err
		}
		sig, err := mbox.Signature(a.File(), fi.Size())
		if err != nil {
			a.Abort()
			return err
		}
		if err := st.SetProgress(r.Header.ID, journal{fi.Size(), sig, skip}.bytes()); err != nil {
			a.Abort()
			return err
		}
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
			err = a.Add(m.Sender, prefix, m.Body, clock.Now(u.Now))
			if err == nil {
				u.Log.Hold("bundle %s: message %d from <%s>: appended to %s", r.Header.ID, i, m.Sender, path)
			}
		}
		if err != nil {
			// Cut the mailbox back to where it was: nothing of a damaged
			// bundle stays, and a re-run after trouble starts afresh.
			if aerr := a.Abort(); aerr != nil {
				return fmt.Errorf("%v; %v", err, aerr) // not ErrDamaged: the mailbox needs the journal
			}
			if errors.Is(err, bundle.ErrDamaged) && len(skip) > 0 {
				u.Log.Printf("bundle %s: damaged; the messages an earlier run appended to %s before other mail stay there", r.Header.ID, path)
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
func (u *Unpacker) recoverMbox(a *mbox.Appender, id string, old int64, sig string) (skip map[int]bool, cut, fresh bool, err error) {
	// The file the Appender has locked, never the path again: someone
	// may have pointed it elsewhere (a link to a file root owns) since.
	f := a.File()
	fi, err := f.Stat()
	if err != nil {
		return nil, false, false, err
	}
	now, err := mbox.Signature(f, min(old, fi.Size()))
	if err != nil {
		return nil, false, false, err
	}
	if fi.Size() < old || now != sig {
		// Someone rewrote the mailbox since the crashed run (a reader
		// marked mail read, or deleted some): the length we wrote down
		// means nothing now, and cutting there could destroy their mail.
		// Never cut; deliver only the messages of ours not in it.
		have, last, _, err := scanOurs(f, 0, fi.Size(), id)
		if err != nil {
			return nil, false, false, err
		}
		// The last of ours found may be the copy the crash cut short
		// (the reader's rewrite made it look whole): it is appended
		// again, the one duplicate this rare case costs.
		delete(have, last)
		u.Log.Printf("bundle %s: %s was rewritten since a crashed run; adding only the messages not in it, and message %d again", id, a.Path(), max(last, 1))
		return have, false, true, nil
	}
	if fi.Size() == old {
		return map[int]bool{}, false, false, nil
	}
	have, _, foreign, err := scanOurs(f, old, fi.Size(), id)
	if err != nil {
		return nil, false, false, err
	}
	if !foreign {
		if err := u.Crash.Op("unpack-recover-truncate", func() error { return f.Truncate(old) }); err != nil {
			return nil, false, false, err
		}
		if err := u.Crash.Op("unpack-recover-fsync", f.Sync); err != nil {
			return nil, false, false, err
		}
		u.Log.Printf("bundle %s: took back %d bytes a crashed run appended to %s", id, fi.Size()-old, a.Path())
		return map[int]bool{}, true, false, nil
	}
	// The crashed run appended 1, 2, ... in order: it got as far as the
	// last of those found in a row (a mark with any other number, in a
	// message of someone else's, counts for nothing, and the skip list
	// stays as long as what was found).
	last := 1
	for have[last+1] {
		last++
	}
	u.Log.Printf("bundle %s: %s changed since a crashed run; resuming at message %d", id, a.Path(), last)
	skip = map[int]bool{}
	for i := 1; i < last; i++ {
		skip[i] = true
	}
	return skip, false, false, nil
}

// journal is a client run's progress record: the mailbox's length before
// the append and a signature of what lies before it (mbox.Signature),
// and the messages of the bundle the run skips because the mailbox
// holds them already (after a rewrite of the mailbox since a crashed
// run): "LENGTH SIGNATURE [N,N,...]".
type journal struct {
	length int64
	sig    string
	skip   map[int]bool
}

func (j journal) bytes() []byte {
	b := strconv.AppendInt(nil, j.length, 10)
	b = append(b, ' ')
	b = append(b, j.sig...)
	for i, n := range slices.Sorted(maps.Keys(j.skip)) {
		if i == 0 {
			b = append(b, ' ')
		} else {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(n), 10)
	}
	return append(b, '\n')
}

func parseJournal(data []byte) (journal, error) {
	f := strings.Fields(string(data))
	if len(f) != 2 && len(f) != 3 {
		return journal{}, errors.New("not \"LENGTH SIGNATURE [SKIPPED]\"")
	}
	j := journal{sig: f[1], skip: map[int]bool{}}
	var err error
	if j.length, err = strconv.ParseInt(f[0], 10, 64); err != nil || j.length < 0 {
		return journal{}, fmt.Errorf("length %q", f[0])
	}
	if len(f) == 3 {
		for _, v := range strings.Split(f[2], ",") {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return journal{}, fmt.Errorf("message number %q", v)
			}
			j.skip[n] = true
		}
	}
	return j, nil
}

// scanOurs looks at the messages between offsets from and to of a
// mailbox for the Received: line omail-unpack puts on each message of
// bundle id, in the first lines of each header only (a body may quote
// one): the numbers of ours found, the highest, and whether a message
// not ours is there.
func scanOurs(f *os.File, from, to int64, id string) (have map[int]bool, last int, foreign bool, err error) {
	have = map[int]bool{}
	inMsg, ours := false, false
	header := 0 // head lines of the current message still to look at
	tag := []byte(mark(id))
	err = mbox.Lines(f, from, to, func(l []byte, begins bool) {
		switch {
		case begins:
			if inMsg && !ours {
				foreign = true
			}
			inMsg, ours, header = true, false, 8
		case header > 0:
			header--
			if len(l) == 1 {
				header = 0
			} else if n, ok := marked(l, tag); ok {
				if n > 0 {
					have[n] = true
				}
				last = max(last, n)
				ours, header = true, 0
			}
		}
	})
	if inMsg && !ours {
		foreign = true
	}
	return have, last, foreign, err
}

// marked reports whether line is a Received: line with tag, the mark of
// one bundle's messages, and the number of the message after it (0 when
// there is none).
func marked(line, tag []byte) (n int, ok bool) {
	if !bytes.HasPrefix(line, []byte("Received: ")) {
		return 0, false
	}
	j := bytes.Index(line, tag)
	if j < 0 {
		return 0, false
	}
	if f := bytes.Fields(line[j+len(tag):]); len(f) > 0 {
		n, _ = strconv.Atoi(string(bytes.TrimSuffix(f[0], []byte(");"))))
	}
	return n, true
}

// openMbox opens and locks the mailbox at path, with the test hooks at
// its file operations (mbox-write, mbox-fsync...).
func (u *Unpacker) openMbox(path string) (*mbox.Appender, error) {
	return mbox.OpenHooked(path, u.Crash)
}
