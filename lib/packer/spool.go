package packer

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"omail/lib/mbox"
	"omail/lib/outbox"
	"omail/lib/safefile"
)

// mboxJournal is the journal of a spool mbox's pass, in the outbox
// directory of the endpoint of its owner's name.
const mboxJournal = ".mbox-journal"

// scanSpool is proxyscanmail: every mbox in the mail spool is packed
// for the endpoint of its owner's name.
func (p *Packer) scanSpool() error {
	spool, err := p.ctl.Line("mailspool")
	if err != nil {
		return err
	}
	ents, err := os.ReadDir(spool)
	if err != nil {
		return err
	}
	var firstErr error
	for _, e := range ents {
		n := e.Name()
		if !e.Type().IsRegular() || strings.HasSuffix(n, ".lock") || outbox.CheckEndpoint(n) != nil {
			continue
		}
		if err := p.packMbox(n, filepath.Join(spool, n)); err != nil {
			p.Log.Printf("mbox %s: %v", n, err)
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	return firstErr
}

// packMbox packs one user's mbox. The mbox stays locked from the moment
// its length is taken until it is cut, so mail delivered meanwhile waits
// for the lock and is appended after the cut: it stays for the next pass.
func (p *Packer) packMbox(user, path string) error {
	jpath := filepath.Join(outbox.Path(p.Home, user), mboxJournal)
	j, err := readJournal(jpath)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if fi, err := os.Stat(path); j == nil && (err != nil || fi.Size() == 0) {
		return nil
	}
	// Without a journal to finish, the directories are opened first:
	// when the endpoint cannot take mail, the mbox is not locked.
	var d *epDirs
	if j == nil {
		var ok bool
		if d, ok, err = p.workDirs(user); err != nil || !ok {
			return err
		}
		defer d.close()
	}
	if err := os.MkdirAll(filepath.Dir(jpath), 0o750); err != nil {
		return err
	}
	// The lock only: its dotlock records no length, so that if we die
	// holding it, the writer that finds it cuts nothing. (An append
	// lock records the length at Open; cutting back to it would remove
	// what a writer that ignores the locks appended meanwhile, and,
	// once we moved that to the front, other mail.)
	a, err := mbox.OpenLock(path, nil)
	if err != nil {
		return err
	}
	// Commit releases the locks and leaves the file as we left it.
	defer a.Commit()
	// The locked file itself: the path may have been pointed elsewhere
	// meanwhile.
	f := a.File()
	if j != nil {
		p.Log.Printf("mbox %s: finishing an interrupted pass", user)
		if err := p.finishMbox(user, nil, f, jpath, j); err != nil {
			return err
		}
	}
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return err
	}
	if d == nil {
		var ok bool
		if d, ok, err = p.workDirs(user); err != nil || !ok {
			return err
		}
		defer d.close()
	}
	// Whole messages only: a writer that ignores the locks may be in
	// the middle of one.
	length, err := wholeMessages(f, fi.Size())
	if err != nil {
		return err
	}
	if length < fi.Size() {
		p.Log.Printf("mbox %s: the last %d bytes are not a whole message yet (no blank line at the end); left for the next pass", user, fi.Size()-length)
	}
	if length == 0 {
		return nil
	}

	// First pass: the messages' sizes (after mboxrd unquoting) and a
	// checksum of the part packed, so a re-run after a crash can tell
	// whether the mbox still starts with it.
	sum := sha256.New()
	mr := mbox.NewReader(io.TeeReader(io.NewSectionReader(f, 0, length), sum))
	var msgs []source
	for i := 1; ; i++ {
		sender, body, err := mr.Next()
		if err == io.EOF {
			break
		}
		if errors.Is(err, mbox.ErrNotMbox) {
			p.Log.Printf("mbox %s: does not start with a From_ line; left alone", user)
			return nil
		}
		if err != nil {
			return err
		}
		n, err := io.Copy(io.Discard, body)
		if err != nil {
			return err
		}
		msgs = append(msgs, source{sender: sender, rcpts: []string{user}, size: n, label: fmt.Sprintf("mbox %s message %d", user, i)})
	}
	if len(msgs) == 0 {
		return nil
	}
	p.Crash.At("pack-mbox-measured")
	// Second pass: the bundles, reading the messages in order.
	mr = mbox.NewReader(io.NewSectionReader(f, 0, length))
	for i := range msgs {
		msgs[i].open = func() (io.Reader, func(), error) {
			_, body, err := mr.Next()
			return body, func() {}, err
		}
	}
	j = &journal{mboxLen: length, mboxSum: hex.EncodeToString(sum.Sum(nil)), tmpDir: &d.tmpID}
	for _, b := range batches(msgs, p.max) {
		pd, err := p.writeBundle(user, d, b)
		if err != nil {
			for _, pd := range j.bundles {
				d.removeTmp(pd.id)
			}
			return err
		}
		j.bundles = append(j.bundles, pd)
	}
	if err := p.Crash.Op("pack-mbox-journal-write", func() error { return safefile.WriteFile(jpath, j.marshal(), 0o640) }); err != nil {
		for _, pd := range j.bundles {
			d.removeTmp(pd.id)
		}
		return err
	}
	p.Crash.At("pack-mbox-journal")
	return p.finishMbox(user, d, f, jpath, j)
}

// finishMbox publishes a journal's bundles, written in d (nil: a
// crashed pass's journal), and, when the mbox still starts with the
// packed part, cuts that part off.
func (p *Packer) finishMbox(user string, d *epDirs, f *os.File, jpath string, j *journal) error {
	if err := p.publishAll(user, d, j); err != nil {
		return err
	}
	p.Crash.At("pack-mbox-published")
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() >= j.mboxLen {
		sum := sha256.New()
		if _, err := io.Copy(sum, io.NewSectionReader(f, 0, j.mboxLen)); err != nil {
			return err
		}
		if hex.EncodeToString(sum.Sum(nil)) == j.mboxSum {
			if err := p.cutPrefix(f, j.mboxLen, fi.Size()); err != nil {
				return err
			}
			p.Log.Printf("mbox %s: %d bytes packed and removed", user, j.mboxLen)
		}
	}
	p.Crash.At("pack-mbox-cut")
	return p.Crash.Op("pack-mbox-journal-remove", func() error { return safefile.Remove(jpath) })
}

// cutPrefix removes the first n of size bytes of f, durably. Under the
// mbox lock nothing is appended while we pack, so the usual case is
// truncating to nothing; a writer that ignores the locks may have added
// a tail, which is moved to the front.
func (p *Packer) cutPrefix(f *os.File, n, size int64) error {
	if size > n {
		buf := make([]byte, 64<<10)
		var off int64
		for off < size-n {
			k, err := f.ReadAt(buf, n+off)
			if k > 0 {
				if _, err := f.WriteAt(buf[:k], off); err != nil {
					return err
				}
				off += int64(k)
			}
			if err != nil && err != io.EOF {
				return err
			}
			if k == 0 {
				break
			}
		}
	}
	if err := p.Crash.Op("pack-mbox-truncate", func() error { return f.Truncate(size - n) }); err != nil {
		return err
	}
	return p.Crash.Op("pack-mbox-fsync", f.Sync)
}

// wholeMessages is how much of the mbox f, size bytes long, holds whole
// messages. An mbox ends with the blank line after its last message
// (lib/mbox writes it, as other deliverers do): then all of it.
// Otherwise the last message may still be being written by a writer
// that ignores the locks, and it is left: up to the start of the last
// From_ line (which mboxrd quoting leaves at message starts only; 0 when
// it is the first line). A file with no From_ line at all is given
// whole, for the Reader to refuse.
func wholeMessages(f io.ReaderAt, size int64) (int64, error) {
	if size == 0 {
		return 0, nil
	}
	end := make([]byte, min(2, size))
	if _, err := f.ReadAt(end, size-int64(len(end))); err != nil {
		return 0, err
	}
	if string(end) == "\n\n" {
		return size, nil
	}
	const chunk = 64 << 10
	sep := []byte("\nFrom ")
	buf := make([]byte, chunk+len(sep)-1)
	// Backwards, each window overlapping the one after it by a
	// separator's length less one, so that none is missed.
	for stop := size; stop > 0; {
		start := max(0, stop-chunk)
		b := buf[:min(int64(len(buf)), size-start)]
		if _, err := f.ReadAt(b, start); err != nil && err != io.EOF {
			return 0, err
		}
		if i := bytes.LastIndex(b, sep); i >= 0 {
			return start + int64(i) + 1, nil
		}
		stop = start
	}
	first := make([]byte, min(int64(len(sep)-1), size))
	if _, err := f.ReadAt(first, 0); err != nil {
		return 0, err
	}
	if string(first) == string(sep[1:]) {
		return 0, nil
	}
	return size, nil
}
