package delivercmd

import (
	"strings"
	"sync"
	"syscall"
	"testing"
)

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The first SIGTERM stops new work only; a second one (SIGINT counts
// the same) cuts off the deliveries in progress, and says so.
func TestStopSignals(t *testing.T) {
	var log syncBuffer
	stop, hard, unnotify := stopSignals(&log)
	defer unnotify()
	syscall.Kill(syscall.Getpid(), syscall.SIGTERM)
	<-stop.Done()
	if hard.Err() != nil {
		t.Fatal("one signal ended the deliveries in progress")
	}
	syscall.Kill(syscall.Getpid(), syscall.SIGINT)
	<-hard.Done()
	// The line is written before hard ends.
	if !strings.Contains(log.String(), "again: cutting off the deliveries in progress") {
		t.Errorf("log %q", log.String())
	}
}
