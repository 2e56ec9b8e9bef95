package outbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"omail/lib/control"
	"omail/lib/lockfile"
	"omail/lib/queue"
	"omail/lib/safefile"
)

// HeldDir is the subdirectory of an endpoint's outbox where held
// entries wait (omail-deliver -hold). List returns regular files only,
// so omail-pack, which packs what List returns, never sees them; -release
// renames them back.
const HeldDir = "held"

// lockName is omail-pack's lock, outbox/.pack.lock (lib/packer takes it
// for a whole pass). Whatever moves or removes entries outside a pass
// (hold, release, delete, expiry) takes it too, so that an entry is
// never held or removed while a bundle that carries it is being
// written: it would then be delivered and still be here.
const lockName = ".pack.lock"

// Lock takes the outbox's lock, waiting for a pass of omail-pack to end.
func Lock(home string) (unlock func(), err error) {
	dir := filepath.Join(home, Dir)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	p := filepath.Join(dir, lockName)
	unlock, err = lockfile.Lock(p)
	if err == nil {
		queue.ChownLike(p, dir)
	}
	return unlock, err
}

// CheckName reports whether name can be an entry's name: not empty, no
// slash, no leading dot.
func CheckName(name string) error {
	if name == "" || name[0] == '.' || strings.ContainsRune(name, '/') || name == HeldDir {
		return fmt.Errorf("outbox: bad entry name %q", name)
	}
	return nil
}

// ListHeld returns the names of an endpoint's held entries, sorted.
func ListHeld(home, endpoint string) ([]string, error) {
	return List(home, filepath.Join(endpoint, HeldDir))
}

// OpenHeld opens a held entry.
func OpenHeld(home, endpoint, name string) (*Entry, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	return Open(home, endpoint, filepath.Join(HeldDir, name))
}

// JournalName is omail-pack's journal of a pass over an endpoint's
// outbox (lib/packer): while it exists, a bundle written by an
// interrupted pass may still carry any entry, and the next pass
// publishes it and removes the entries it names.
const JournalName = ".journal"

// ErrPassPending is an entry that may be in a bundle omail-pack has not
// finished publishing (a pass was interrupted): holding it now could let
// it be delivered by that bundle and again at its release. The next
// omail-pack pass finishes the journal; then try again.
var ErrPassPending = errors.New("an interrupted omail-pack pass is pending for this endpoint: run omail-pack, then try again")

// PassPending reports whether an interrupted omail-pack pass over the
// endpoint has still to be finished. Call it under Lock.
func PassPending(home, endpoint string) bool {
	_, err := os.Lstat(filepath.Join(Path(home, endpoint), JournalName))
	return err == nil
}

// Hold moves an entry into held/, durably. Call it under Lock. It
// refuses (ErrPassPending) while an interrupted pass may carry the entry.
func Hold(home, endpoint, name string) error {
	if err := CheckName(name); err != nil {
		return err
	}
	if PassPending(home, endpoint) {
		return ErrPassPending
	}
	dir := Path(home, endpoint)
	held := filepath.Join(dir, HeldDir)
	if err := os.Mkdir(held, 0o750); err == nil {
		queue.ChownLike(held, dir)
	} else if !errors.Is(err, fs.ErrExist) {
		return err
	}
	now := time.Now()
	if err := moveNoReplace(filepath.Join(dir, name), filepath.Join(held, name)); err != nil {
		return err
	}
	// When it was held, for Release: beside it, a dot file that no
	// listing takes for an entry. Not durable: without it, Release
	// falls back to the change time the move set.
	since := sinceFile(home, endpoint, name)
	if err := os.WriteFile(since, []byte(strconv.FormatInt(now.Unix(), 10)+"\n"), 0o640); err == nil {
		queue.ChownLike(since, dir)
	}
	return nil
}

// sinceFile holds the time a held entry was held.
func sinceFile(home, endpoint, name string) string {
	return filepath.Join(Path(home, endpoint), HeldDir, ".since."+name)
}

// heldSince is when the held entry was held: its since file, or (an
// entry held by an older omail, or the file lost) the change time that
// the move into held/ set, which a chmod or a copy of the home may have
// moved on since.
func heldSince(home, endpoint, name string, fi fs.FileInfo) (time.Time, bool) {
	if b, err := os.ReadFile(sinceFile(home, endpoint, name)); err == nil {
		if t, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil {
			return time.Unix(t, 0), true
		}
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return time.Unix(st.Ctim.Unix()), true
	}
	return time.Time{}, false
}

// Release moves a held entry back where omail-pack packs it, durably.
// Call it under Lock. The time it spent held does not count as waiting
// (Waiting, outboxlifetime): its time is moved on by that much, so that
// an entry held through a long outage is not bounced at its release.
func Release(home, endpoint, name string, now time.Time) error {
	if err := CheckName(name); err != nil {
		return err
	}
	dir := Path(home, endpoint)
	from := filepath.Join(dir, HeldDir, name)
	if fi, err := os.Lstat(from); err == nil {
		if heldAt, ok := heldSince(home, endpoint, name, fi); ok {
			if heldFor := now.Sub(heldAt); heldFor > 0 {
				t := fi.ModTime().Add(heldFor)
				if t.After(now) {
					t = now
				}
				if err := os.Chtimes(from, t, t); err != nil {
					return err
				}
			}
		}
	}
	if err := moveNoReplace(from, filepath.Join(dir, name)); err != nil {
		return err
	}
	os.Remove(sinceFile(home, endpoint, name))
	return nil
}

// moveNoReplace renames durably, refusing to overwrite an entry of the
// same name (a Put after the hold may have made one).
func moveNoReplace(from, to string) error {
	if _, err := os.Lstat(to); err == nil {
		return fmt.Errorf("outbox: %s exists already", to)
	}
	return safefile.Rename(from, to)
}

// Delete removes an entry (held or not), durably. Call it under Lock.
// It refuses (ErrPassPending) an entry that an interrupted pass may
// carry, as Hold does: the pass would still deliver it. (A held entry
// is in no pass: Hold refuses while one is pending.)
func Delete(home, endpoint, name string, held bool) error {
	if err := CheckName(name); err != nil {
		return err
	}
	p := filepath.Join(Path(home, endpoint), name)
	if held {
		p = filepath.Join(Path(home, endpoint), HeldDir, name)
	} else if PassPending(home, endpoint) {
		return ErrPassPending
	}
	if err := safefile.Remove(p); err != nil {
		return err
	}
	if held {
		os.Remove(sinceFile(home, endpoint, name))
	}
	return nil
}

// UploadDir is where omail-pack leaves an endpoint's bundles:
// <ocmpdir>/<endpoint>/mail/upload, or under ocmpsecuredir with
// ocmpsecure (lib/packer decides the same way).
func UploadDir(ctl *control.Dir, endpoint string) (string, error) {
	base, err := ctl.Line("ocmpdir")
	if err != nil {
		return "", err
	}
	secure, err := ctl.Bool("ocmpsecure")
	if err != nil {
		return "", err
	}
	if secure {
		if base, err = ctl.Line("ocmpsecuredir"); err != nil {
			return "", err
		}
	}
	return filepath.Join(base, endpoint, "mail", "upload"), nil
}

// UploadStatus is UploadDir and whether it exists as a directory.
func UploadStatus(ctl *control.Dir, endpoint string) (dir string, ok bool, err error) {
	if dir, err = UploadDir(ctl, endpoint); err != nil {
		return "", false, err
	}
	fi, err := os.Stat(dir)
	return dir, err == nil && fi.IsDir(), nil
}

// Summary is what waits in one endpoint's outbox.
type Summary struct {
	Endpoint string
	Messages int       // entries, held ones included
	Held     int       // of which held
	Bytes    int64     // the entries' files, envelopes included
	Oldest   time.Time // when the oldest entry was written; zero if none
	Newest   time.Time // when the newest entry not held was written; zero if none
	Upload   string    // the endpoint's upload directory
	UploadOK bool      // it exists (as a directory)
}

// Summarize describes every endpoint's outbox that holds entries,
// sorted by endpoint. It reads directories and file times only.
func Summarize(home string, ctl *control.Dir) ([]Summary, error) {
	eps, err := Endpoints(home)
	if err != nil {
		return nil, err
	}
	sort.Strings(eps)
	var out []Summary
	for _, ep := range eps {
		s := Summary{Endpoint: ep}
		for _, held := range []bool{false, true} {
			dir := Path(home, ep)
			if held {
				dir = filepath.Join(dir, HeldDir)
			}
			ents, err := os.ReadDir(dir)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, err
			}
			for _, e := range ents {
				if n := e.Name(); n[0] == '.' || !e.Type().IsRegular() {
					continue
				}
				fi, err := e.Info()
				if err != nil {
					continue // packed meanwhile
				}
				s.Messages++
				if held {
					s.Held++
				}
				s.Bytes += fi.Size()
				if s.Oldest.IsZero() || fi.ModTime().Before(s.Oldest) {
					s.Oldest = fi.ModTime()
				}
				if !held && fi.ModTime().After(s.Newest) {
					s.Newest = fi.ModTime()
				}
			}
		}
		if s.Messages == 0 {
			continue
		}
		if s.Upload, s.UploadOK, err = UploadStatus(ctl, ep); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// Waiting is an entry's time in the outbox: since its file was written
// (Put; a hold or release keeps the time).
func Waiting(home, endpoint, name string, held bool, now time.Time) (time.Duration, error) {
	p := filepath.Join(Path(home, endpoint), name)
	if held {
		p = filepath.Join(Path(home, endpoint), HeldDir, name)
	}
	fi, err := os.Lstat(p)
	if err != nil {
		return 0, err
	}
	return now.Sub(fi.ModTime()), nil
}

// Settle gives each entry of endpoint (not held) whose time is after now
// the time now, and returns how many it changed. Such an entry was
// written while the clock ran ahead (set back since); left alone, it
// would wait (Waiting, outboxlifetime) until the clock caught up. So its
// wait counts from the first sweep after the step. Call it under Lock,
// and not while PassPending: the change moves the file's change time,
// by which omail-pack's journal knows the entries it packed; the new
// time is fsynced before Settle goes on.
func Settle(home, endpoint string, now time.Time) (int, error) {
	names, err := List(home, endpoint)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, name := range names {
		p := filepath.Join(Path(home, endpoint), name)
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return n, err
		}
		if !fi.Mode().IsRegular() || !fi.ModTime().After(now) {
			continue
		}
		if err := os.Chtimes(p, now, now); err != nil {
			return n, err
		}
		// Made durable before anything else sees it: omail-pack's journal
		// names an entry by its inode and change time, and where the file
		// system does not keep metadata changes in order (btrfs, ext4 with
		// fast_commit) a crash could bring back the change time of before,
		// and the packed entry would be left to be packed again.
		if err := syncFile(p); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// syncFile fsyncs the file at p.
func syncFile(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
