package mbox

import (
	"bufio"
	"errors"
	"io"
	"strings"
)

// Recover looks in the locked mailbox for a copy of a message that an
// earlier, crashed attempt of the same delivery may have added: the copy
// Add(sender, prefix, msg) writes, found by marker, a line of prefix that
// no other delivery uses (local delivery's "X-Omail-Delivery: TOKEN").
//
//   - A whole copy anywhere in the file (byte for byte what Add writes,
//     the From_ line's date aside): found is true, and the caller adds
//     nothing.
//   - A torn copy at the end of the file (the crash came while Add was
//     writing; the bytes there are the beginning of what Add writes,
//     whether or not they reach the marker): it is cut off, durably, and
//     found is false: Add then writes a whole one.
//   - Otherwise found is false and the file is untouched. (A torn copy
//     that someone else's mail followed stays where it is: nothing in the
//     middle of a mailbox is ever cut. Open's takeover of the dead
//     writer's dotlock cuts a torn copy before anyone appends after it;
//     Recover's cut is for a copy whose lock was lost.)
//
// It reads the whole file, so a caller calls it only when an earlier
// attempt may have written. It must come before any Add.
func (a *Appender) Recover(marker, sender string, prefix []string, msg io.ReaderAt, size int64) (found bool, err error) {
	if a.done || a.added {
		// A programming error, reported; nothing read or written.
		return false, errors.New("mbox: Recover after Add, Commit or Abort")
	}
	want := strings.TrimSuffix(marker, "\n") + "\n"
	end := a.oldLen
	var marked []int64 // starts of messages whose header has the marker
	last, lastLine := int64(-1), int64(-1)
	var start int64 // of the current message
	header := 0     // lines of the current header still to look at
	off := int64(0)
	br := bufio.NewReaderSize(io.NewSectionReader(a.f, 0, end), scanBuf)
	atStart := true
	for {
		l, rerr := br.ReadSlice('\n')
		if atStart && len(l) > 0 {
			lastLine = off
			switch {
			case len(l) >= len(fromLine) && string(l[:len(fromLine)]) == fromLine:
				start, last, header = off, off, len(prefix)+1
			case header > 0:
				header--
				if len(l) == 1 {
					header = 0
				} else if string(l) == want {
					marked = append(marked, start)
					header = 0
				}
			}
		}
		off += int64(len(l))
		atStart = rerr == nil
		if rerr == io.EOF {
			break
		}
		if rerr != nil && rerr != bufio.ErrBufferFull {
			// EIO reading the mailbox: Recover fails, nothing is written, the delivery defers and looks again.
			return false, rerr
		}
	}
	for _, s := range marked {
		m, err := a.compare(s, end, sender, prefix, msg, size)
		if err != nil {
			// As above.
			return false, err
		}
		if m == whole {
			return true, nil
		}
	}
	cut := int64(-1)
	if last >= 0 {
		m, err := a.compare(last, end, sender, prefix, msg, size)
		if err != nil {
			// As above.
			return false, err
		}
		if m == torn {
			cut = last
		}
	}
	if cut < 0 && lastLine >= 0 && lastLine > last && end-lastLine < int64(len(fromLine)) {
		// A line too short to be a From_ line yet, unended: the first
		// bytes Add writes, cut off by the crash.
		frag := make([]byte, end-lastLine)
		if _, err := a.f.ReadAt(frag, lastLine); err != nil {
			// As above.
			return false, err
		}
		if strings.HasPrefix(fromLine, string(frag)) {
			cut = lastLine
		}
	}
	if cut >= 0 {
		if err := a.Hook.Op("mbox-recover-truncate", func() error { return a.f.Truncate(cut) }); err != nil {
			// The torn copy cannot be cut (EIO): nothing appended, the delivery defers, the next Recover cuts it.
			return false, err
		}
		if err := a.Hook.Op("mbox-recover-fsync", a.f.Sync); err != nil {
			// As above: the next Recover finds the copy cut or cuts it again.
			return false, err
		}
		if err := a.settle(cut); err != nil {
			// As above.
			return false, err
		}
		if err := a.record(cut); err != nil {
			// As above: the file is cut; Abort leaves it so, and the lock names the old length, which the file is not longer than.
			return false, err
		}
	}
	return false, nil
}

type match int

const (
	differs match = iota
	torn          // the file ends within what Add would write, matching so far
	whole
)

var (
	errDiffers = errors.New("differs")
	errEnded   = errors.New("file ended")
)

// compare tells how the bytes of the file from s to end compare with the
// message Add(sender, prefix, msg) writes, its From_ line's date not
// compared (asctime: always 24 bytes).
func (a *Appender) compare(s, end int64, sender string, prefix []string, msg io.ReaderAt, size int64) (match, error) {
	head := fromLine + FromSender(sender) + " "
	c := &comparer{f: a.f, off: s, end: end, skipFrom: s + int64(len(head)), skipTo: s + int64(len(head)) + 24, buf: make([]byte, 32<<10)}
	w := bufio.NewWriterSize(c, 32<<10)
	w.WriteString(head)
	w.WriteString(strings.Repeat(" ", 24))
	w.WriteString("\n")
	for _, p := range prefix {
		w.WriteString(strings.TrimSuffix(p, "\n"))
		w.WriteString("\n")
	}
	q := quoter{w: w, start: true}
	_, err := io.CopyBuffer(&q, io.NewSectionReader(msg, 0, size), make([]byte, 32<<10))
	if err == nil {
		err = q.close()
	}
	if err == nil {
		_, err = w.WriteString("\n")
	}
	if err == nil {
		err = w.Flush()
	}
	switch {
	case err == nil:
		return whole, nil
	case errors.Is(err, errEnded):
		return torn, nil
	case errors.Is(err, errDiffers):
		return differs, nil
	}
	// A read error (EIO) of the mailbox or the message: Recover fails, the delivery defers.
	return differs, err
}

// comparer is a writer that compares what is written with the file's
// bytes from off, up to end, except those in skipFrom..skipTo (the
// date), which may be anything but a newline.
type comparer struct {
	f                io.ReaderAt
	off, end         int64
	skipFrom, skipTo int64
	buf              []byte
}

func (c *comparer) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if c.off >= c.end {
			return 0, errEnded
		}
		k := int(min(int64(len(p)), int64(len(c.buf)), c.end-c.off))
		if _, err := c.f.ReadAt(c.buf[:k], c.off); err != nil {
			// EIO: the comparison fails, Recover with it; nothing written.
			return 0, err
		}
		for i := 0; i < k; i++ {
			pos := c.off + int64(i)
			skip := pos >= c.skipFrom && pos < c.skipTo
			if !skip && c.buf[i] != p[i] || skip && c.buf[i] == '\n' {
				return 0, errDiffers
			}
		}
		c.off += int64(k)
		p = p[k:]
	}
	return n, nil
}
