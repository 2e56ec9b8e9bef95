package eventlog

import (
	"fmt"
	"strings"
	"testing"
)

// writes records each Write.
type writes struct{ w []string }

func (w *writes) Write(p []byte) (int, error) {
	w.w = append(w.w, string(p))
	return len(p), nil
}

func TestPrintf(t *testing.T) {
	var w writes
	l := New(&w, "omail-x")
	l.Printf("one %d", 1)
	l.Printf("%s", "two")
	if strings.Join(w.w, "|") != "omail-x: one 1\n|omail-x: two\n" {
		t.Errorf("writes %q", w.w)
	}
}

// Held lines go out in batches of whole lines, each write at most
// BatchSize bytes, in order, before the next Printf's line and with it.
func TestHold(t *testing.T) {
	var w writes
	l := New(&w, "omail-x")
	for i := 0; i < 500; i++ {
		l.Hold("message %d: fine", i)
	}
	l.Printf("done")
	if len(w.w) > 20 {
		t.Errorf("%d writes for 500 lines", len(w.w))
	}
	for _, s := range w.w {
		if !strings.HasSuffix(s, "\n") || len(s) > BatchSize {
			t.Errorf("write of %d bytes ending %q", len(s), s[max(0, len(s)-20):])
		}
	}
	var want strings.Builder
	for i := 0; i < 500; i++ {
		fmt.Fprintf(&want, "omail-x: message %d: fine\n", i)
	}
	want.WriteString("omail-x: done\n")
	if got := strings.Join(w.w, ""); got != want.String() {
		t.Errorf("lines differ: %d bytes, want %d", len(got), want.Len())
	}

	// A line longer than a batch is written alone; Flush writes the rest.
	w.w = nil
	l.Hold("short")
	l.Hold("%s", strings.Repeat("x", BatchSize))
	l.Hold("after")
	l.Flush()
	if len(w.w) != 3 || w.w[0] != "omail-x: short\n" || len(w.w[1]) != BatchSize+len("omail-x: \n") || w.w[2] != "omail-x: after\n" {
		t.Errorf("writes %d: %.40q", len(w.w), w.w)
	}
	l.Flush()
	if len(w.w) != 3 {
		t.Error("Flush with nothing held wrote")
	}
}

// Raw hands out the writer itself, after the held lines.
func TestRaw(t *testing.T) {
	var w writes
	l := New(&w, "omail-x")
	l.Hold("held")
	if l.Raw() != &w || len(w.w) != 1 || w.w[0] != "omail-x: held\n" {
		t.Errorf("Raw after %q", w.w)
	}
}
