package packer

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"omail/lib/clock"
	"omail/lib/outbox"
	"omail/lib/quarantine"
	"omail/lib/safefile"
)

// packOutbox packs one endpoint's outbox.
func (p *Packer) packOutbox(ep string) error {
	dir := outbox.Path(p.Home, ep)
	jpath := filepath.Join(dir, outbox.JournalName)
	if j, err := readJournal(jpath); err == nil {
		p.Log.Printf("endpoint %s: finishing an interrupted pass", ep)
		if err := p.finishOutbox(ep, nil, jpath, j); err != nil {
			return err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	p.cleanOutbox(ep)
	names, err := outbox.List(p.Home, ep)
	if err != nil || len(names) == 0 {
		return err
	}
	d, ok, err := p.workDirs(ep)
	if err != nil || !ok {
		return err
	}
	defer d.close()
	var msgs []source
	for _, n := range names {
		if !outbox.ValidName(n) {
			// Not a file omail-deliver made (a person's copy, say): it
			// is not packed, and its name never goes in a journal.
			p.quarantine(ep, n, fmt.Errorf("outbox %s: %q is not an entry's name", ep, n))
			continue
		}
		e, err := outbox.Open(p.Home, ep, n)
		if errors.Is(err, outbox.ErrCorrupt) {
			p.quarantine(ep, n, err)
			continue
		}
		if err != nil {
			return err
		}
		// The head of each entry is read for its priority: bounded
		// (headLimit), and the entry is read again when packed.
		urg, err := urgent(e)
		e.Close()
		if err != nil {
			return err
		}
		n := n
		msgs = append(msgs, source{sender: e.Sender, rcpts: e.Rcpts, size: e.Size, label: "entry " + n, entry: n,
			urgent: urg, since: p.waitingSince(ep, n),
			open: func() (io.Reader, func(), error) {
				e, err := outbox.Open(p.Home, ep, n)
				if err != nil {
					return nil, nil, err
				}
				return e, func() { e.Close() }, nil
			}})
	}
	p.order.sort(msgs)
	skipped := 0
	for _, b := range batches(msgs, p.max) {
		pd, err := p.writeBundle(ep, d, b)
		// An entry that cannot be read stops its bundle, not the
		// others: the bundle is written again without it, and it stays
		// where it is (or goes to the quarantine, when damaged).
		var ee *entryError
		for errors.As(err, &ee) {
			if !p.setAside(ep, b[ee.msg].entry, ee.err) {
				skipped++
			}
			b = append(b[:ee.msg:ee.msg], b[ee.msg+1:]...)
			if err = nil; len(b) > 0 {
				pd, err = p.writeBundle(ep, d, b)
			}
		}
		if err != nil {
			return err
		}
		if len(b) == 0 {
			continue
		}
		p.Crash.At("pack-written")
		j := &journal{bundles: []pending{pd}, stamps: map[string]string{}, tmpDir: &d.tmpID}
		for _, m := range b {
			j.entries = append(j.entries, m.entry)
			j.stamps[m.entry] = stamp(filepath.Join(outbox.Path(p.Home, ep), m.entry))
		}
		if err := p.Crash.Op("pack-journal-write", func() error { return safefile.WriteFile(jpath, j.marshal(), 0o640) }); err != nil {
			d.removeTmp(pd.id)
			return err
		}
		p.Crash.At("pack-journal")
		if err := p.finishOutbox(ep, d, jpath, j); err != nil {
			return err
		}
	}
	if skipped > 0 {
		return fmt.Errorf("endpoint %s: %d entries could not be read; they stay for the next pass", ep, skipped)
	}
	return nil
}

// setAside deals with an entry that stopped a bundle: a damaged one
// goes to the quarantine (true); one that could not be read stays for
// the next pass, logged by the caller.
func (p *Packer) setAside(ep, name string, why error) bool {
	e, err := outbox.Open(p.Home, ep, name)
	if errors.Is(err, outbox.ErrCorrupt) {
		p.quarantine(ep, name, err)
		return true
	}
	if err == nil {
		e.Close()
	}
	p.Log.Printf("endpoint %s: %v: entry %s left for the next pass", ep, why, name)
	return false
}

// waitingSince is when an outbox entry started waiting for the link:
// when omail-deliver made it (its file's modification time). An entry
// that cannot be looked at now counts as new; packing it fails later.
func (p *Packer) waitingSince(ep, name string) time.Time {
	fi, err := os.Stat(filepath.Join(outbox.Path(p.Home, ep), name))
	if err != nil {
		return clock.Now(p.Now)
	}
	return fi.ModTime()
}

// finishOutbox does steps 3 to 5 for a journalled bundle, written in d
// (nil: a crashed pass's journal).
func (p *Packer) finishOutbox(ep string, d *epDirs, jpath string, j *journal) error {
	if err := p.publishAll(ep, d, j); err != nil {
		return err
	}
	p.Crash.At("pack-published")
	// Remove only the entries the journal means: after a crash, a later
	// Put may have made a new entry with a name packed before.
	var packed []string
	for _, e := range j.entries {
		if stamp(filepath.Join(outbox.Path(p.Home, ep), e)) == j.stamps[e] {
			packed = append(packed, e)
		}
	}
	if err := p.Crash.Op("pack-outbox-remove", func() error { return outbox.Remove(p.Home, ep, packed) }); err != nil {
		return err
	}
	p.Crash.At("pack-removed")
	return p.Crash.Op("pack-journal-remove", func() error { return safefile.Remove(jpath) })
}

// cleanOutbox removes temporary files a crashed outbox.Put left: dot
// files other than the journals, not touched for a day (a Put in
// progress touches its file all the time).
func (p *Packer) cleanOutbox(ep string) {
	dir := outbox.Path(p.Home, ep)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		n := e.Name()
		if n[0] != '.' || n == outbox.JournalName || n == mboxJournal || !e.Type().IsRegular() {
			continue
		}
		if fi, err := e.Info(); err == nil && clock.Now(p.Now).Sub(fi.ModTime()) > 24*time.Hour {
			if os.Remove(filepath.Join(dir, n)) == nil {
				p.Log.Printf("endpoint %s: removed %s, left by an interrupted delivery", ep, n)
			}
		}
	}
}

// quarantine moves a damaged outbox entry out of the way.
func (p *Packer) quarantine(ep, name string, why error) {
	to, err := quarantine.Move(p.Home, filepath.Join(outbox.Path(p.Home, ep), name), fmt.Sprintf("outbox-%s-%s", ep, name))
	if err != nil {
		p.Log.Printf("endpoint %s: %v; and cannot move it aside: %v", ep, why, err)
		return
	}
	p.Log.Printf("endpoint %s: %v: moved to %s", ep, why, to)
}
