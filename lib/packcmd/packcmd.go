// Package packcmd is the body of omail-pack: it moves mail from the OCMP
// outbox (and, with proxyscanmail, from mbox files in the mail spool)
// into bundles in <ocmpdir>/<endpoint>/mail/upload/, where OCMP picks
// them up. See docs/omail-pack.md.
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
package packcmd

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"omail/lib/bundle"
	"omail/lib/control"
	"omail/lib/crashpoint"
	"omail/lib/home"
	"omail/lib/lockfile"
	"omail/lib/mbox"
	"omail/lib/outbox"
	"omail/lib/safefile"
)

// Run is omail-pack: one pass, or with -watch a pass every pollinterval
// seconds until SIGTERM. Exit 0, or 111 when a pass met temporary
// trouble (the mail stays where it was), or 100 for a usage error.
func Run(args []string, env home.Env, stdin io.Reader, stdout, stderr io.Writer) int {
	watch := false
	for _, a := range args[1:] {
		switch a {
		case "-watch":
			watch = true
		default:
			fmt.Fprintf(stderr, "omail-pack: usage: omail-pack [-watch]\n")
			return 100
		}
	}
	p := &Packer{Home: env.Dir(), Log: stderr, Crash: crashpoint.New(env)}
	if !watch {
		if err := p.Pass(); err != nil {
			return 111
		}
		return 0
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	wake := make(chan os.Signal, 1)
	signal.Notify(wake, syscall.SIGALRM)
	stopped := make(chan struct{})
	go func() { <-stop; close(stopped) }()
	woken := make(chan struct{}, 1)
	go func() {
		for range wake {
			select {
			case woken <- struct{}{}:
			default:
			}
		}
	}()
	p.Watch(woken, stopped, nil)
	fmt.Fprintln(stderr, "omail-pack: exiting")
	return 0
}

// Packer makes bundles.
type Packer struct {
	Home  string
	Log   io.Writer
	Now   func() time.Time // the clock for bundle headers; nil: time.Now
	Crash func(point string)

	// Read from control files at the start of each pass.
	ctl        *control.Dir
	base       string
	createDirs bool
	max        int64
	comp       string
}

func (p *Packer) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

func (p *Packer) crash(point string) {
	if p.Crash != nil {
		p.Crash(point)
	}
}

func (p *Packer) logf(format string, args ...any) {
	fmt.Fprintf(p.Log, "omail-pack: "+format+"\n", args...)
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
		interval := 60 * time.Second
		if n, err := control.New(p.Home).Int("pollinterval"); err == nil && n > 0 {
			interval = time.Duration(n) * time.Second
		}
		t := time.NewTimer(interval)
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
		p.logf("%v", err)
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
	if p.comp, err = p.ctl.Line("bundlecompression"); err != nil {
		return err
	}
	if p.comp != bundle.Zstd && p.comp != bundle.Gzip {
		return fmt.Errorf("control file bundlecompression: %q is neither zstd nor gzip", p.comp)
	}
	scan, err := p.ctl.Bool("proxyscanmail")
	if err != nil {
		return err
	}

	// One packer at a time: two would pack the same entries twice.
	if err := os.MkdirAll(filepath.Join(p.Home, outbox.Dir), 0o750); err != nil {
		return err
	}
	unlock, err := lockfile.Lock(filepath.Join(p.Home, outbox.Dir, ".pack.lock"))
	if err != nil {
		return err
	}
	defer unlock()

	var firstErr error
	note := func(err error) {
		if err != nil {
			p.logf("%v", err)
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

// dirs returns an endpoint's upload and temporary directories, creating
// upload/ only when ocmpcreateuserdir says so. ok is false when the
// mail has to wait (logged).
func (p *Packer) dirs(ep string) (upload, tmp string, ok bool, err error) {
	mail := filepath.Join(p.base, ep, "mail")
	upload = filepath.Join(mail, "upload")
	tmp = filepath.Join(mail, ".omail-tmp")
	fi, err := os.Stat(upload)
	switch {
	case err == nil && fi.IsDir():
	case err == nil:
		return "", "", false, fmt.Errorf("endpoint %s: %s is not a directory", ep, upload)
	case errors.Is(err, fs.ErrNotExist) && p.createDirs:
		if err := os.MkdirAll(upload, 0o755); err != nil {
			return "", "", false, err
		}
		p.logf("endpoint %s: created %s", ep, upload)
	case errors.Is(err, fs.ErrNotExist):
		p.logf("endpoint %s: no directory %s and ocmpcreateuserdir is 0: mail stays queued", ep, upload)
		return "", "", false, nil
	default:
		return "", "", false, err
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return "", "", false, err
	}
	return upload, tmp, true, nil
}

// bundleName is the file name a bundle gets in upload/.
func (p *Packer) bundleName(id string) string {
	if p.comp == bundle.Gzip {
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
}

// writeBundle writes msgs into a new bundle in tmpDir, durably.
func (p *Packer) writeBundle(ep, tmpDir, uploadDir string, msgs []source) (pending, error) {
	id := bundle.NewID()
	pd := pending{id: id, tmp: filepath.Join(tmpDir, id), upload: filepath.Join(uploadDir, p.bundleName(id))}
	f, err := os.OpenFile(pd.tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return pd, err
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(pd.tmp)
		}
	}()
	bw := bufio.NewWriterSize(f, 256<<10)
	w, err := bundle.NewWriter(bw, p.comp, bundle.Header{ID: id, Endpoint: ep, Created: p.now()})
	if err != nil {
		return pd, err
	}
	var total int64
	for _, m := range msgs {
		r, done, err := m.open()
		if err != nil {
			return pd, err
		}
		err = w.Add(m.sender, m.rcpts, m.size, r)
		done()
		if err != nil {
			return pd, fmt.Errorf("bundle %s: %s: %w", id, m.label, err)
		}
		total += m.size
	}
	if err := w.Close(); err != nil {
		return pd, err
	}
	if err := bw.Flush(); err != nil {
		return pd, err
	}
	if err := f.Sync(); err != nil {
		return pd, err
	}
	if err := f.Close(); err != nil {
		return pd, err
	}
	if err := safefile.SyncDir(tmpDir); err != nil {
		return pd, err
	}
	ok = true
	for _, m := range msgs {
		p.logf("bundle %s: %s from <%s> to %s, %d bytes", id, m.label, m.sender, strings.Join(m.rcpts, ","), m.size)
	}
	p.logf("bundle %s: endpoint %s: %d messages, %d bytes before compression", id, ep, len(msgs), total)
	return pd, nil
}

// publish renames a durable bundle into upload/ durably. A bundle no
// longer in the temporary directory was published before a crash.
func publish(pd pending) error {
	err := os.Rename(pd.tmp, pd.upload)
	if errors.Is(err, fs.ErrNotExist) {
		if _, err := os.Stat(pd.tmp); errors.Is(err, fs.ErrNotExist) {
			return safefile.SyncDir(filepath.Dir(pd.upload))
		}
	}
	if err != nil {
		return err
	}
	return safefile.SyncDir(filepath.Dir(pd.upload))
}

// batches splits messages into bundles of at most max bytes before
// compression; a message bigger than max gets a bundle of its own.
func batches(msgs []source, max int64) [][]source {
	var out [][]source
	var cur []source
	var size int64
	for _, m := range msgs {
		if len(cur) > 0 && size+m.size > max {
			out = append(out, cur)
			cur, size = nil, 0
		}
		cur = append(cur, m)
		size += m.size
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// Journals: one line per fact, "key value".
type journal struct {
	bundles []pending
	entries []string
	stamps  map[string]string // identity of each entry when journalled
	mboxLen int64
	mboxSum string
}

func (j *journal) marshal() []byte {
	var b strings.Builder
	for _, pd := range j.bundles {
		// Paths are quoted: ocmpdir may hold spaces.
		fmt.Fprintf(&b, "bundle %s %s %s\n", pd.id, strconv.Quote(pd.tmp), strconv.Quote(pd.upload))
	}
	for _, e := range j.entries {
		fmt.Fprintf(&b, "entry %s %s\n", e, j.stamps[e])
	}
	if j.mboxSum != "" {
		fmt.Fprintf(&b, "mbox %d %s\n", j.mboxLen, j.mboxSum)
	}
	b.WriteString("end\n")
	return []byte(b.String())
}

func readJournal(path string) (*journal, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	j := &journal{}
	complete := false
	// Every line must be understood: a journal decides what is removed,
	// so a line skipped could lose mail.
	bad := func(l string) error {
		return fmt.Errorf("journal %s: line %q not understood; left for a person", path, l)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	for _, l := range lines {
		if complete {
			return nil, bad(l)
		}
		key, rest, _ := strings.Cut(l, " ")
		switch key {
		case "bundle":
			id, paths, ok := strings.Cut(rest, " ")
			if !ok {
				return nil, bad(l)
			}
			tmp, after, err1 := unquoteNext(paths)
			upload, tail, err2 := unquoteNext(after)
			if err1 != nil || err2 != nil || tail != "" || id == "" {
				return nil, bad(l)
			}
			j.bundles = append(j.bundles, pending{id, tmp, upload})
		case "entry":
			name, stamp, ok := strings.Cut(rest, " ")
			if !ok || name == "" || strings.Contains(name, "/") || stamp == "" || strings.Contains(stamp, " ") {
				return nil, bad(l)
			}
			if j.stamps == nil {
				j.stamps = map[string]string{}
			}
			j.entries = append(j.entries, name)
			j.stamps[name] = stamp
		case "mbox":
			f := strings.Fields(rest)
			if len(f) != 2 {
				return nil, bad(l)
			}
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil || n < 0 {
				return nil, bad(l)
			}
			j.mboxLen, j.mboxSum = n, f[1]
		case "end":
			if rest != "" {
				return nil, bad(l)
			}
			complete = true
		default:
			return nil, bad(l)
		}
	}
	if !complete {
		return nil, fmt.Errorf("journal %s is incomplete", path)
	}
	if len(j.bundles) == 0 && (len(j.entries) > 0 || j.mboxSum != "") {
		return nil, fmt.Errorf("journal %s removes mail but names no bundle; left for a person", path)
	}
	return j, nil
}

// stamp identifies one file, not one name: its inode and its change
// time to the nanosecond (an inode number alone is reused at once after
// a removal). "-" when there is no such file.
func stamp(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return "-"
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "-"
	}
	return fmt.Sprintf("%d.%d.%d", st.Ino, st.Ctim.Sec, st.Ctim.Nsec)
}

// unquoteNext reads one Go-quoted string at the start of s and returns
// it and what follows, without the separating space.
func unquoteNext(s string) (string, string, error) {
	q, err := strconv.QuotedPrefix(s)
	if err != nil {
		return "", "", err
	}
	v, err := strconv.Unquote(q)
	if err != nil {
		return "", "", err
	}
	return v, strings.TrimPrefix(s[len(q):], " "), nil
}

// packOutbox packs one endpoint's outbox.
func (p *Packer) packOutbox(ep string) error {
	dir := outbox.Path(p.Home, ep)
	jpath := filepath.Join(dir, ".journal")
	if j, err := readJournal(jpath); err == nil {
		p.logf("endpoint %s: finishing an interrupted pass", ep)
		if err := p.finishOutbox(ep, jpath, j); err != nil {
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
	upload, tmp, ok, err := p.dirs(ep)
	if err != nil || !ok {
		return err
	}
	if err := p.cleanTmp(ep, tmp); err != nil {
		return err
	}
	var msgs []source
	for _, n := range names {
		e, err := outbox.Open(p.Home, ep, n)
		if errors.Is(err, outbox.ErrCorrupt) {
			p.quarantine(ep, n, err)
			continue
		}
		if err != nil {
			return err
		}
		e.Close()
		n := n
		msgs = append(msgs, source{sender: e.Sender, rcpts: e.Rcpts, size: e.Size, label: "entry " + n,
			open: func() (io.Reader, func(), error) {
				e, err := outbox.Open(p.Home, ep, n)
				if err != nil {
					return nil, nil, err
				}
				return e, func() { e.Close() }, nil
			}})
	}
	for _, b := range batches(msgs, p.max) {
		pd, err := p.writeBundle(ep, tmp, upload, b)
		if err != nil {
			return err
		}
		p.crash("pack-written")
		j := &journal{bundles: []pending{pd}, stamps: map[string]string{}}
		for _, m := range b {
			name := strings.TrimPrefix(m.label, "entry ")
			j.entries = append(j.entries, name)
			j.stamps[name] = stamp(filepath.Join(outbox.Path(p.Home, ep), name))
		}
		if err := safefile.WriteFile(jpath, j.marshal(), 0o640); err != nil {
			os.Remove(pd.tmp)
			return err
		}
		p.crash("pack-journal")
		if err := p.finishOutbox(ep, jpath, j); err != nil {
			return err
		}
	}
	return nil
}

// finishOutbox does steps 3 to 5 for a journalled bundle.
func (p *Packer) finishOutbox(ep, jpath string, j *journal) error {
	for _, pd := range j.bundles {
		if err := publish(pd); err != nil {
			return err
		}
		p.logf("bundle %s: endpoint %s: in %s", pd.id, ep, pd.upload)
	}
	p.crash("pack-published")
	// Remove only the entries the journal means: after a crash, a later
	// Put may have made a new entry with a name packed before.
	var packed []string
	for _, e := range j.entries {
		if stamp(filepath.Join(outbox.Path(p.Home, ep), e)) == j.stamps[e] {
			packed = append(packed, e)
		}
	}
	if err := outbox.Remove(p.Home, ep, packed); err != nil {
		return err
	}
	p.crash("pack-removed")
	return safefile.Remove(jpath)
}

// cleanTmp removes what a crashed pass left in the temporary directory:
// bundles that no journal names. (The outbox and the mbox of one name
// share the directory; each finishes its own journal first, but the
// other's may still be pending.)
func (p *Packer) cleanTmp(ep, tmp string) error {
	ents, err := os.ReadDir(tmp)
	if err != nil {
		return err
	}
	keep := map[string]bool{}
	for _, jn := range []string{".journal", ".mbox-journal"} {
		j, err := readJournal(filepath.Join(outbox.Path(p.Home, ep), jn))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if j != nil {
			for _, pd := range j.bundles {
				keep[filepath.Base(pd.tmp)] = true
			}
		}
	}
	for _, e := range ents {
		if bundle.ValidID(e.Name()) && !keep[e.Name()] {
			p.logf("endpoint %s: removing unfinished bundle %s", ep, e.Name())
			if err := os.Remove(filepath.Join(tmp, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
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
		if n[0] != '.' || n == ".journal" || n == ".mbox-journal" || !e.Type().IsRegular() {
			continue
		}
		if fi, err := e.Info(); err == nil && p.now().Sub(fi.ModTime()) > 24*time.Hour {
			if os.Remove(filepath.Join(dir, n)) == nil {
				p.logf("endpoint %s: removed %s, left by an interrupted delivery", ep, n)
			}
		}
	}
}

// quarantine moves a damaged outbox entry out of the way.
func (p *Packer) quarantine(ep, name string, why error) {
	q := filepath.Join(p.Home, "quarantine")
	os.MkdirAll(q, 0o750)
	to := filepath.Join(q, fmt.Sprintf("outbox-%s-%s", ep, name))
	if err := safefile.Rename(filepath.Join(outbox.Path(p.Home, ep), name), to); err != nil {
		p.logf("endpoint %s: %v; and cannot move it aside: %v", ep, why, err)
		return
	}
	p.logf("endpoint %s: %v: moved to %s", ep, why, to)
}

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
			p.logf("mbox %s: %v", n, err)
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
	jpath := filepath.Join(outbox.Path(p.Home, user), ".mbox-journal")
	j, err := readJournal(jpath)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if fi, err := os.Stat(path); j == nil && (err != nil || fi.Size() == 0) {
		return nil
	}
	if j == nil {
		upload, _, ok, err := p.dirs(user)
		if err != nil || !ok || upload == "" {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Dir(jpath), 0o750); err != nil {
		return err
	}
	a, err := mbox.Open(path)
	if err != nil {
		return err
	}
	// Nothing is written through the Appender: it is the lock. Commit
	// releases it; Abort would cut the file back to the length Open saw,
	// which is wrong once we have cut the mbox ourselves.
	defer a.Commit()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if j != nil {
		p.logf("mbox %s: finishing an interrupted pass", user)
		if err := p.finishMbox(user, f, jpath, j); err != nil {
			return err
		}
	}
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return err
	}
	upload, tmp, ok, err := p.dirs(user)
	if err != nil || !ok {
		return err
	}
	if err := p.cleanTmp(user, tmp); err != nil {
		return err
	}
	length := fi.Size()

	// First pass: the messages' sizes (after mboxrd unquoting) and a
	// checksum of the part packed, so a re-run after a crash can tell
	// whether the mbox still starts with it.
	sum := sha256.New()
	mr := bundle.NewMboxReader(io.TeeReader(io.NewSectionReader(f, 0, length), sum))
	var msgs []source
	for i := 1; ; i++ {
		sender, body, err := mr.Next()
		if err == io.EOF {
			break
		}
		if errors.Is(err, bundle.ErrDamaged) {
			p.logf("mbox %s: does not start with a From_ line; left alone", user)
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
	p.crash("pack-mbox-measured")
	// Second pass: the bundles, reading the messages in order.
	mr = bundle.NewMboxReader(io.NewSectionReader(f, 0, length))
	for i := range msgs {
		msgs[i].open = func() (io.Reader, func(), error) {
			_, body, err := mr.Next()
			return body, func() {}, err
		}
	}
	j = &journal{mboxLen: length, mboxSum: hex.EncodeToString(sum.Sum(nil))}
	for _, b := range batches(msgs, p.max) {
		pd, err := p.writeBundle(user, tmp, upload, b)
		if err != nil {
			for _, pd := range j.bundles {
				os.Remove(pd.tmp)
			}
			return err
		}
		j.bundles = append(j.bundles, pd)
	}
	if err := safefile.WriteFile(jpath, j.marshal(), 0o640); err != nil {
		return err
	}
	p.crash("pack-mbox-journal")
	return p.finishMbox(user, f, jpath, j)
}

// finishMbox publishes a journal's bundles and, when the mbox still
// starts with the packed part, cuts that part off.
func (p *Packer) finishMbox(user string, f *os.File, jpath string, j *journal) error {
	for _, pd := range j.bundles {
		if err := publish(pd); err != nil {
			return err
		}
		p.logf("bundle %s: endpoint %s: in %s", pd.id, user, pd.upload)
	}
	p.crash("pack-mbox-published")
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
			if err := cutPrefix(f, j.mboxLen, fi.Size()); err != nil {
				return err
			}
			p.logf("mbox %s: %d bytes packed and removed", user, j.mboxLen)
		}
	}
	p.crash("pack-mbox-cut")
	return safefile.Remove(jpath)
}

// cutPrefix removes the first n of size bytes of f, durably. Under the
// mbox lock nothing is appended while we pack, so the usual case is
// truncating to nothing; a writer that ignores the locks may have added
// a tail, which is moved to the front.
func cutPrefix(f *os.File, n, size int64) error {
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
	if err := f.Truncate(size - n); err != nil {
		return err
	}
	return f.Sync()
}
