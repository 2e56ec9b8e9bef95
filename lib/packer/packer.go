// Package packer is omail-pack's work: it moves mail from the OCMP
// outbox (and, with proxyscanmail, from mbox files in the mail spool)
// into bundles in <ocmpdir>/<endpoint>/mail/upload/, where OCMP picks
// them up. See docs/omail-pack.md. lib/packcmd is the command around it.
//
// The order of steps is what keeps mail from being lost or doubled:
//
//  1. the bundle is written under <endpoint>/mail/.omail-tmp/ (OCMP reads
//     every file in upload/, so a partial file must never be there),
//     fsynced, and its directory fsynced;
//  2. a journal naming the bundle and the outbox entries (or the mbox
//     prefix) it holds is written durably;
//  3. the bundle is renamed into upload/, and upload/ fsynced;
//  4. the entries are removed (or the mbox cut), durably;
//  5. the journal is removed.
//
// A crash before 2 leaves a stray temporary file that the next pass
// deletes, and the mail still in the outbox. A crash after 2 is finished
// by the next pass from the journal: it renames the bundle if it is still
// in the temporary directory and removes what the bundle holds. Nothing
// is packed twice.
package packer

import (
	"bufio"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"omail/lib/addr"
	"omail/lib/bundle"
	"omail/lib/clock"
	"omail/lib/control"
	"omail/lib/crashpoint"
	"omail/lib/eventlog"
	"omail/lib/ocmpkey"
	"omail/lib/outbox"
	"omail/lib/safefile"
)

// Packer makes bundles from the outbox and mail spool of one home.
type Packer struct {
	Home  string
	Log   *eventlog.Log
	Now   func() time.Time // the clock for bundle headers and ages; nil: the real one
	Crash crashpoint.Hook  // tests' crash and hook points; nil: none

	// Read from control files at the start of each pass.
	ctl        *control.Dir
	base       string
	createDirs bool
	max        int64
	comp       bundle.Options
	order      ordering
	key        ed25519.PrivateKey
}

// Watch runs passes until stop is closed: one at once, then one every
// pollinterval seconds or when wake fires. A pass in progress is
// finished before Watch returns. passed, if not nil, is called after
// each pass (tests wait on it).
func (p *Packer) Watch(wake <-chan struct{}, stop <-chan struct{}, passed func(error)) {
	for {
		err := p.Pass()
		if passed != nil {
			passed(err)
		}
		t := time.NewTimer(p.pollInterval())
		select {
		case <-stop:
			t.Stop()
			return
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// Pass packs everything there is now. Trouble with one endpoint is
// logged and does not stop the others; the error says there was some.
func (p *Packer) Pass() error {
	err := p.pass()
	if err != nil {
		p.Log.Printf("%v", err)
	}
	return err
}

func (p *Packer) pass() error {
	if fi, err := os.Stat(p.Home); err != nil || !fi.IsDir() {
		return fmt.Errorf("OMAIL_HOME %s is not a directory", p.Home)
	}
	p.ctl = control.New(p.Home)
	var err error
	if p.base, err = p.ctl.Line("ocmpdir"); err != nil {
		return err
	}
	secure, err := p.ctl.Bool("ocmpsecure")
	if err != nil {
		return err
	}
	if secure {
		if p.base, err = p.ctl.Line("ocmpsecuredir"); err != nil {
			return err
		}
		if p.base == "" {
			return errors.New("ocmpsecure is 1 but ocmpsecuredir is empty")
		}
	}
	if p.createDirs, err = p.ctl.Bool("ocmpcreateuserdir"); err != nil {
		return err
	}
	if p.max, err = p.ctl.Int("bundlemax"); err != nil {
		return err
	}
	if p.max == 0 {
		p.max = 8 << 20
	}
	if p.comp, err = p.compression(); err != nil {
		return err
	}
	if p.order, err = p.ordering(); err != nil {
		return err
	}
	scan, err := p.ctl.Bool("proxyscanmail")
	if err != nil {
		return err
	}
	// Every bundle is signed: a receiver that lists this home's public
	// key in its ocmppeers delivers only what this key signed.
	if p.key, err = ocmpkey.Load(p.ctl.File(ocmpkey.File)); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no signing key %s: run omail-pack -keygen once, and list the public key it prints in the other side's control/ocmppeers; mail stays queued", p.ctl.File(ocmpkey.File))
	} else if err != nil {
		return fmt.Errorf("signing key: %v; mail stays queued", err)
	}

	// One packer at a time: two would pack the same entries twice.
	unlock, err := outbox.Lock(p.Home)
	if err != nil {
		return err
	}
	defer unlock()

	var firstErr error
	note := func(err error) {
		if err != nil {
			p.Log.Printf("%v", err)
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	eps, err := outbox.Endpoints(p.Home)
	note(err)
	for _, ep := range eps {
		note(p.packOutbox(ep))
	}
	if scan {
		note(p.scanSpool())
	}
	if firstErr != nil {
		return errors.New("pass ended with trouble; what was not packed stays for the next pass")
	}
	return nil
}

// bundleName is the file name a bundle gets in upload/.
func (p *Packer) bundleName(id string) string {
	if p.comp.Compression == bundle.Gzip {
		return "omail-" + id + ".gz"
	}
	return "omail-" + id + ".zst"
}

// pending is a bundle written, durable, in the temporary directory.
type pending struct {
	id, tmp, upload string
}

// source is one message to pack.
type source struct {
	sender string
	rcpts  []string
	size   int64
	open   func() (io.Reader, func(), error)
	label  string
	entry  string    // the outbox entry it is ("" for mbox mail)
	urgent bool      // its header asks to go first (urgent)
	since  time.Time // when it started waiting for the link
}

// rcptGroups splits recipients into the groups one bundle record may
// carry (bundle.MaxRcpts of them, bundle.MaxRcptBytes in all, which is
// what a reader takes). An outbox entry may hold more: the queue takes
// 99,999 recipients of up to 1024 bytes each, all for one endpoint
// perhaps. Such a message is written as several records of the same
// bundle, one per group: the bundle is published whole or not at all,
// so every recipient travels once, whatever crashes.
func rcptGroups(rcpts []string) [][]string {
	var out [][]string
	start, bytes := 0, 0
	for i, r := range rcpts {
		if i > start && (i-start == bundle.MaxRcpts || bytes+len(r) > bundle.MaxRcptBytes) {
			out = append(out, rcpts[start:i])
			start, bytes = i, 0
		}
		bytes += len(r)
	}
	if start < len(rcpts) {
		out = append(out, rcpts[start:])
	}
	return out
}

// weight is what a message adds to a bundle before compression: its
// size once per record.
func (m source) weight() int64 {
	return m.size * int64(max(1, len(rcptGroups(m.rcpts))))
}

// entryError is a message of a bundle that could not be read (its file
// unreadable, or shorter than when it was measured): the bundle is
// abandoned, and the others can go without that message.
type entryError struct {
	msg int // its index in the messages of the bundle
	err error
}

func (e *entryError) Error() string { return e.err.Error() }
func (e *entryError) Unwrap() error { return e.err }

// readCount is a message's reader that tells its read errors from the
// bundle's write errors: what it read, and how reading ended.
type readCount struct {
	r   io.Reader
	n   int64
	err error // not io.EOF
	eof bool
}

func (c *readCount) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	if err == io.EOF {
		c.eof = true
	} else if err != nil {
		c.err = err
	}
	return n, err
}

// version is the bundle format msgs need: VersionUTF8 when an envelope
// address is not ASCII (docs/BUNDLES.md), so that an older omail-unpack
// refuses the bundle instead of relaying SMTPUTF8 mail without the flag.
func version(msgs []source) int {
	for _, m := range msgs {
		if !addr.ASCII(m.sender) {
			return bundle.VersionUTF8
		}
		for _, r := range m.rcpts {
			if !addr.ASCII(r) {
				return bundle.VersionUTF8
			}
		}
	}
	return bundle.Version
}

// writeBundle writes msgs into a new bundle in d's temporary directory,
// durably.
func (p *Packer) writeBundle(ep string, d *epDirs, msgs []source) (pending, error) {
	id := bundle.NewID()
	pd := pending{id: id, tmp: filepath.Join(d.tmpPath, id), upload: filepath.Join(d.uploadPath, p.bundleName(id))}
	fd, err := unix.Openat(int(d.tmp.Fd()), id, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return pd, &os.PathError{Op: "create", Path: pd.tmp, Err: err}
	}
	f := os.NewFile(uintptr(fd), pd.tmp)
	ok := false
	defer func() {
		if !ok {
			f.Close()
			d.removeTmp(id)
		}
	}()
	// Mode 640, the owner and group of upload/: OCMP reads it, other
	// local users must not (it holds their mail, and the contents of
	// mailboxes that are 600).
	if err := chownLike(f, d.upload); err != nil {
		return pd, err
	}
	if err := f.Chmod(0o640); err != nil {
		return pd, err
	}
	bw := bufio.NewWriterSize(p.Crash.Writer("pack-bundle-write", f), 256<<10)
	o := p.comp
	for _, m := range msgs {
		o.SizeHint += m.weight()
	}
	w, err := bundle.NewWriterOptions(bw, o, bundle.Header{ID: id, Endpoint: ep, Created: clock.Now(p.Now), Version: version(msgs)})
	if err != nil {
		return pd, err
	}
	defer func() {
		if !ok {
			w.Abort() // the zstd program, if running
		}
	}()
	w.Sign(p.key)
	var total int64
	for i, m := range msgs {
		for _, g := range rcptGroups(m.rcpts) {
			r, done, err := m.open()
			if err != nil {
				return pd, &entryError{i, fmt.Errorf("bundle %s: %s: %w", id, m.label, err)}
			}
			rc := &readCount{r: r}
			err = w.Add(m.sender, g, m.size, rc)
			done()
			if err != nil {
				err = fmt.Errorf("bundle %s: %s: %w", id, m.label, err)
				if rc.err != nil || rc.eof && rc.n < m.size {
					return pd, &entryError{i, err}
				}
				return pd, err
			}
			total += m.size
		}
	}
	if err := w.Close(); err != nil {
		return pd, err
	}
	if err := bw.Flush(); err != nil {
		return pd, err
	}
	if err := p.Crash.Op("pack-bundle-fsync", f.Sync); err != nil {
		return pd, err
	}
	if err := f.Close(); err != nil {
		return pd, err
	}
	if err := p.Crash.Op("pack-bundle-dirsync", func() error { return safefile.SyncDirOf(d.tmp) }); err != nil {
		return pd, err
	}
	ok = true
	for _, m := range msgs {
		records := ""
		if n := len(rcptGroups(m.rcpts)); n > 1 {
			records = fmt.Sprintf(", as %d records", n)
		}
		p.Log.Printf("bundle %s: %s from <%s> to %s, %d bytes%s", id, m.label, m.sender, strings.Join(m.rcpts, ","), m.size, records)
	}
	how := p.comp.Compression + ", " + w.Encoder()
	if p.comp.Dict != 0 && p.comp.Compression != bundle.Gzip {
		how += fmt.Sprintf(", dictionary %d", p.comp.Dict)
	}
	if p.comp.Compact {
		how += ", format 3"
	}
	p.Log.Printf("bundle %s: endpoint %s: %d messages, %d bytes before compression (%s)", id, ep, len(msgs), total, how)
	return pd, nil
}

// chownLike gives f the owner and group of the directory like, when we
// are root.
func chownLike(f, like *os.File) error {
	if os.Geteuid() != 0 {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(like.Fd()), &st); err != nil {
		return &os.PathError{Op: "stat", Path: like.Name(), Err: err}
	}
	return f.Chown(int(st.Uid), int(st.Gid))
}

// workDirs is dirs, with what a crashed pass left in the temporary
// directory removed: the directories a pass of ep writes bundles in.
// The caller closes them.
func (p *Packer) workDirs(ep string) (*epDirs, bool, error) {
	d, ok, err := p.dirs(ep)
	if err != nil || !ok {
		return nil, ok, err
	}
	if err := p.cleanTmp(ep, d); err != nil {
		d.close()
		return nil, false, err
	}
	return d, true, nil
}

// publishAll publishes every bundle of a journal, for endpoint ep, in
// d, the directories they were written in; nil when finishing a
// crashed pass's journal: then they are opened from the journal's
// paths, the same way.
func (p *Packer) publishAll(ep string, d *epDirs, j *journal) error {
	changed := ""
	if d == nil {
		var err error
		var made bool
		// upload/ is made again only for a journal that names its
		// .omail-tmp/: for an older one, a missing .omail-tmp/ counts as
		// "published", which a tree moved away would make a loss.
		d, made, err = journalDirs(ep, j, func(base string) bool {
			return j.tmpDir != nil && p.createDirs && filepath.Clean(base) == filepath.Clean(p.base)
		})
		if err != nil {
			return err
		}
		defer d.close()
		if made {
			p.Log.Printf("endpoint %s: created %s", ep, d.uploadPath)
		}
		changed = d.tmpChanged(j)
	}
	for _, pd := range j.bundles {
		if err := p.publish(d, pd, changed); err != nil {
			return err
		}
		p.Log.Printf("bundle %s: endpoint %s: in %s", pd.id, ep, pd.upload)
	}
	return nil
}

// publish renames a durable bundle into upload/ durably. A bundle no
// longer in the temporary directory (or with that directory gone) was
// published before a crash, if that directory is the one it was
// written in: changed says how it is not (tmpChanged), and then only a
// bundle in upload/ was published. One in neither is left for a person:
// it may be in the old .omail-tmp/, moved with its mail/ directory.
func (p *Packer) publish(d *epDirs, pd pending, changed string) error {
	name := filepath.Base(pd.upload)
	err := p.Crash.Op("pack-publish-rename", func() error {
		if d.tmp == nil {
			return &os.PathError{Op: "rename", Path: pd.tmp, Err: unix.ENOENT}
		}
		if err := unix.Renameat(int(d.tmp.Fd()), pd.id, int(d.upload.Fd()), name); err != nil {
			return &os.LinkError{Op: "rename", Old: pd.tmp, New: pd.upload, Err: err}
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		var st unix.Stat_t
		if d.tmp == nil || errors.Is(unix.Fstatat(int(d.tmp.Fd()), pd.id, &st, unix.AT_SYMLINK_NOFOLLOW), unix.ENOENT) {
			err = nil
			if changed != "" && !d.inUpload(name) {
				err = fmt.Errorf("bundle %s: %s %s, and %s holds no %s: the bundle may be in the old .omail-tmp/; its journal and mail are left for a person (docs/omail-pack.md, Crash behaviour)", pd.id, d.tmpPath, changed, d.uploadPath, name)
			}
		}
	}
	if err != nil {
		return err
	}
	return p.Crash.Op("pack-publish-dirsync", func() error { return safefile.SyncDirOf(d.upload) })
}

// batches splits messages into bundles of at most max bytes before
// compression; a message bigger than max gets a bundle of its own.
func batches(msgs []source, max int64) [][]source {
	var out [][]source
	var cur []source
	var size int64
	for _, m := range msgs {
		w := m.weight()
		if len(cur) > 0 && size+w > max {
			out = append(out, cur)
			cur, size = nil, 0
		}
		cur = append(cur, m)
		size += w
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}
