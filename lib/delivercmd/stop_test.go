package delivercmd

import (
	"strings"
	"syscall"
	"testing"

	"omail/lib/internal/testfake"
)

// The first SIGTERM stops new work only; a second one (SIGINT counts
// the same) cuts off the deliveries in progress, and says so.
func TestStopSignals(t *testing.T) {
	var log testfake.Log
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
