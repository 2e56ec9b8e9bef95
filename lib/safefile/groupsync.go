package safefile

import "sync"

// Group commit. Many sessions of one process (the resident omail-smtpd,
// under load) commit messages into the same queue directories at the
// same moment; each needs "my new entry is durable" before it answers,
// which one directory fsync gives every entry made before that fsync
// started. SyncDirShared lets concurrent callers share fsyncs: a caller
// waits for the first fsync of dir that starts after it called, run by
// whichever caller comes first, so N callers at once cost about two
// fsyncs instead of N.

// dirSync coordinates the fsyncs of one directory.
type dirSync struct {
	mu      sync.Mutex
	cond    *sync.Cond
	running bool   // an fsync is in progress
	waiting int    // callers blocked behind it (for tests)
	started uint64 // fsyncs started so far
	done    uint64 // the newest finished fsync (its number)
	err     error  // and its result
}

var (
	dirSyncsMu sync.Mutex
	dirSyncs   = map[string]*dirSync{}
)

func dirSyncFor(dir string) *dirSync {
	dirSyncsMu.Lock()
	defer dirSyncsMu.Unlock()
	s := dirSyncs[dir]
	if s == nil {
		s = &dirSync{}
		s.cond = sync.NewCond(&s.mu)
		dirSyncs[dir] = s
	}
	return s
}

// SyncDirShared is SyncDir for callers that may run concurrently in one
// process: it returns once an fsync of dir that started after the call
// has finished, and that fsync's error. dir names the directory the same
// way for every caller (the fsyncs are shared by path).
func SyncDirShared(dir string) error {
	return dirSyncFor(dir).sync(func() error { return SyncDir(dir) })
}

// sync waits for, or runs, an fsync that starts after this call.
func (s *dirSync) sync(fsync func() error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Every fsync numbered up to s.started began before this call (or is
	// running now, and may have read the directory before our entry was
	// made); the next one to start is late enough.
	want := s.started + 1
	for s.done < want {
		if s.running {
			s.waiting++
			s.cond.Wait()
			s.waiting--
			continue
		}
		s.running = true
		s.started++
		n := s.started
		s.mu.Unlock()
		err := fsync()
		s.mu.Lock()
		s.running = false
		s.done, s.err = n, err
		s.cond.Broadcast()
	}
	// A newer fsync than the one we wanted also covers our entry, and
	// its result is the directory's state now.
	return s.err
}
