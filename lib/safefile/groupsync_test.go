package safefile

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// TestSharedSyncStartsAfterCall checks the one property group commit
// rests on: no caller is answered by an fsync that started before it
// called. The fake fsync blocks until released, so the test controls
// which calls overlap which fsyncs.
func TestSharedSyncStartsAfterCall(t *testing.T) {
	s := &dirSync{}
	s.cond = sync.NewCond(&s.mu)
	var mu sync.Mutex
	fsyncs := 0
	entered := make(chan int)
	release := make(chan struct{})
	fsync := func() error {
		mu.Lock()
		fsyncs++
		n := fsyncs
		mu.Unlock()
		entered <- n
		<-release
		return nil
	}
	first := make(chan error)
	go func() { first <- s.sync(fsync) }()
	if n := <-entered; n != 1 {
		t.Fatalf("first fsync numbered %d", n)
	}
	// Fsync 1 is running. Three callers now need fsync 2: none may be
	// answered by fsync 1.
	var wg sync.WaitGroup
	results := make(chan error, 3)
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); results <- s.sync(fsync) }()
	}
	waitWaiters(t, s, 3)
	release <- struct{}{} // fsync 1 ends
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	select {
	case <-results:
		t.Fatal("a caller that came during fsync 1 was answered by it")
	default:
	}
	if n := <-entered; n != 2 {
		t.Fatalf("second fsync numbered %d", n)
	}
	release <- struct{}{} // fsync 2 ends and answers all three
	wg.Wait()
	close(results)
	for err := range results {
		if err != nil {
			t.Fatal(err)
		}
	}
	if fsyncs != 2 {
		t.Fatalf("%d fsyncs for 4 callers in two waves, want 2", fsyncs)
	}
}

// waitWaiters yields until n callers are blocked behind the running
// fsync: a condition, not a clock.
func waitWaiters(t *testing.T, s *dirSync, n int) {
	t.Helper()
	for {
		s.mu.Lock()
		w := s.waiting
		s.mu.Unlock()
		if w == n {
			return
		}
		runtime.Gosched()
	}
}

func TestSharedSyncError(t *testing.T) {
	s := &dirSync{}
	s.cond = sync.NewCond(&s.mu)
	boom := errors.New("boom")
	if err := s.sync(func() error { return boom }); err != boom {
		t.Fatalf("got %v, want the fsync's error", err)
	}
	if err := s.sync(func() error { return nil }); err != nil {
		t.Fatalf("a later good fsync: got %v", err)
	}
}

func TestSyncDirReal(t *testing.T) {
	dir := t.TempDir()
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			p := filepath.Join(dir, string(rune('a'+i)))
			if err := os.WriteFile(p, nil, 0o600); err != nil {
				t.Error(err)
			}
			if err := SyncDir(dir); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	if err := SyncDir(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("no error for a missing directory")
	}
	dirSyncsMu.Lock()
	n := len(dirSyncs)
	dirSyncsMu.Unlock()
	if n != 0 {
		t.Fatalf("%d directory coordinators kept after every caller returned", n)
	}
}

// TestSharedSyncLateWaiterSeesFailure: a caller that wanted fsync 2 and
// wakes only after fsync 3 succeeded must still get fsync 2's error
// (a success after a failed fsync proves nothing of what it dropped).
func TestSharedSyncLateWaiterSeesFailure(t *testing.T) {
	boom := errors.New("boom")
	s := &dirSync{done: 3, failed: 2, failErr: boom}
	if err := s.resultFor(2); err != boom {
		t.Fatalf("wanted fsync 2, which failed, fsync 3 succeeded: got %v", err)
	}
	if err := s.resultFor(3); err != nil {
		t.Fatalf("wanted fsync 3, which succeeded: got %v", err)
	}
	s = &dirSync{done: 2, failed: 0}
	if err := s.resultFor(1); err != nil {
		t.Fatalf("no failure: got %v", err)
	}
}
