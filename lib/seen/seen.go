// Package seen is omail-unpack's memory of bundles, in
// $OMAIL_HOME/unpacked/: the ids of the bundles it unpacked, so that a
// copy OCMP hands over again delivers nothing; the progress of a bundle
// being unpacked, so that a re-run after a crash or a temporary failure
// goes on where the last run stopped; and the lock that keeps two
// unpackers from delivering one bundle at once.
package seen

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"omail/lib/bundle"
	"omail/lib/clock"
	"omail/lib/crashpoint"
	"omail/lib/lockfile"
	"omail/lib/safefile"
)

// Dir is the store's directory under OMAIL_HOME.
const Dir = "unpacked"

// Horizon is how long the id of an unpacked bundle is remembered. A copy
// of a bundle arriving later than this after the first is unpacked
// again. OCMP redelivers within hours or days; 90 days is far beyond.
const Horizon = 90 * 24 * time.Hour

// Store is the store of one home, locked by this process.
type Store struct {
	dir    string
	now    func() time.Time
	unlock func()
	// Crash is the test hooks at the store's file operations
	// (lib/crashpoint): "seen-record", "seen-progress",
	// "seen-progress-clear". nil: none.
	Crash crashpoint.Hook
}

// Open creates home's store if need be and takes its lock, waiting for
// another unpacker to finish. now is the clock (nil: the real one).
func Open(home string, now func() time.Time) (*Store, error) {
	dir := filepath.Join(home, Dir)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	unlock, err := lockfile.Lock(filepath.Join(dir, ".lock"))
	if err != nil {
		return nil, err
	}
	return &Store{dir: dir, now: now, unlock: unlock}, nil
}

// Close releases the lock.
func (s *Store) Close() { s.unlock() }

// Done reports whether bundle id was unpacked before.
func (s *Store) Done(id string) bool {
	_, err := os.Stat(filepath.Join(s.dir, id))
	return err == nil
}

// Record writes down, durably, that bundle id from endpoint is unpacked:
// messages messages, for user (the client hook) or into the queue (user
// empty). The line is for a person; only the file's name and age count.
func (s *Store) Record(id, endpoint, user string, messages int) error {
	line := fmt.Sprintf("%s %s %d %d\n", endpoint, user, messages, clock.Now(s.now).Unix())
	return s.Crash.Op("seen-record", func() error { return safefile.WriteFile(filepath.Join(s.dir, id), []byte(line), 0o640) })
}

// Progress returns bundle id's progress journal as the last run wrote
// it, or an error satisfying errors.Is(err, fs.ErrNotExist) when there is
// none. What it holds is the unpacker's business.
func (s *Store) Progress(id string) ([]byte, error) {
	return os.ReadFile(s.ProgressFile(id))
}

// SetProgress replaces bundle id's progress journal, durably.
func (s *Store) SetProgress(id string, data []byte) error {
	return s.Crash.Op("seen-progress", func() error { return safefile.WriteFile(s.ProgressFile(id), data, 0o640) })
}

// ClearProgress removes bundle id's progress journal, durably, if there
// is one.
func (s *Store) ClearProgress(id string) error {
	err := s.Crash.Op("seen-progress-clear", func() error { return safefile.Remove(s.ProgressFile(id)) })
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// ProgressFile is the file that holds bundle id's progress journal, for
// messages that name it.
func (s *Store) ProgressFile(id string) string { return filepath.Join(s.dir, id+".part") }

// Expire forgets the bundle ids older than Horizon, and the progress of
// bundles that old, at most once a day. It returns how many files it
// removed.
func (s *Store) Expire() int {
	stamp := filepath.Join(s.dir, ".expired")
	if fi, err := os.Stat(stamp); err == nil && clock.Now(s.now).Sub(fi.ModTime()) < 24*time.Hour {
		return 0
	}
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return 0
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
		if err == nil && clock.Now(s.now).Sub(fi.ModTime()) > Horizon {
			if os.Remove(filepath.Join(s.dir, name)) == nil {
				n++
			}
		}
	}
	safefile.SyncDir(s.dir)
	now := clock.Now(s.now)
	if f, err := os.Create(stamp); err == nil {
		f.Close()
		os.Chtimes(stamp, now, now)
	}
	return n
}
