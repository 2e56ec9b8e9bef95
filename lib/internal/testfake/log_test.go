package testfake

import (
	"strings"
	"sync"
	"testing"
)

// Writes from many goroutines at once: no race (-race), no line lost.
func TestLogConcurrentWrites(t *testing.T) {
	var l Log
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				l.Write([]byte("line\n"))
			}
		}()
	}
	wg.Wait()
	if n := strings.Count(l.String(), "line\n"); n != 800 {
		t.Errorf("%d lines, want 800", n)
	}
}
