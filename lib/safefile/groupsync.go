package safefile

import "sync"

// Group commit. Many goroutines of one process (the sessions of the
// resident omail-smtpd, the deliveries of omail-deliver) make entries in
// the same directories at the same moment, and each needs "my entry is
// durable" before it answers, which one directory fsync gives every entry
// made before that fsync started. So SyncDir lets concurrent callers
// share fsyncs: a caller waits for the first fsync of the directory that
// starts after it called, run by whichever caller comes first. N callers
// at once cost about two fsyncs instead of N, and a lone caller exactly
// one, as before.

// dirSync coordinates the fsyncs of one directory.
type dirSync struct {
	mu      sync.Mutex
	cond    *sync.Cond
	running bool   // an fsync is in progress
	waiting int    // callers blocked behind it
	started uint64 // fsyncs started so far
	done    uint64 // the newest finished fsync (its number)
	failed  uint64 // the newest fsync that failed (its number), 0 if none
	failErr error  // and its error
	users   int    // callers between dirSyncFor and release
}

var (
	dirSyncsMu sync.Mutex
	dirSyncs   = map[string]*dirSync{}
)

// dirSyncFor returns the coordinator of dir's fsyncs, shared by path.
func dirSyncFor(dir string) *dirSync {
	dirSyncsMu.Lock()
	defer dirSyncsMu.Unlock()
	s := dirSyncs[dir]
	if s == nil {
		s = &dirSync{}
		s.cond = sync.NewCond(&s.mu)
		dirSyncs[dir] = s
	}
	s.users++
	return s
}

// release forgets dir's coordinator once nobody uses it, so that a
// long-running process does not keep one per directory it ever synced.
func release(dir string, s *dirSync) {
	dirSyncsMu.Lock()
	defer dirSyncsMu.Unlock()
	if s.users--; s.users == 0 && dirSyncs[dir] == s {
		delete(dirSyncs, dir)
	}
}

// syncShared is SyncDir's body: it returns once an fsync of dir that
// started after the call has finished, with that fsync's error.
func syncShared(dir string, fsync func() error) error {
	s := dirSyncFor(dir)
	defer release(dir, s)
	return s.sync(fsync)
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
		s.done = n
		if err != nil {
			s.failed, s.failErr = n, err
		}
		s.cond.Broadcast()
	}
	return s.resultFor(want)
}

// resultFor is the answer for a caller whose entry fsync want covers,
// once fsyncs up to s.done have finished. A caller woken late may find
// newer fsyncs done than its own. A newer success does not vouch for a
// failure before it: after a failed fsync the kernel may have dropped
// the dirty blocks it could not write and reports them no more, so a
// later fsync can succeed with the entry never written. So any failure
// from want on is the answer; one after a success of want's own is
// answered too (a spurious temporary error, never a false "durable").
func (s *dirSync) resultFor(want uint64) error {
	if s.failed >= want {
		return s.failErr
	}
	return nil
}
