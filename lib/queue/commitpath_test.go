package queue

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"testing"

	"omail/lib/envelope"
)

// The error branches of the commit (Begin, Pending.Commit, Enqueue,
// Derived.Commit): each failure leaves no message behind, in tmp/ or in
// todo/, except a derived message's intent, which a repeat finishes.

var testEnv = &envelope.Envelope{Sender: "a@b", Rcpts: []string{"c@d"}}

func TestBeginSkipsAnIDInUse(t *testing.T) {
	q := newQueue(t)
	// The next id newID makes, taken already (a file another process of
	// the same pid left before a reboot, with the clock set back).
	next := fmt.Sprintf("%d.%09d.%d.%d", int64(1700000000), 5, os.Getpid(), idSeq.Load()+1)
	if err := os.WriteFile(q.Path(DirTmp, next+".mess"), []byte("other"), 0o640); err != nil {
		t.Fatal(err)
	}
	p, err := q.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Abort()
	if p.ID() == next {
		t.Fatalf("Begin took %s, which was in use", next)
	}
	if b, _ := os.ReadFile(q.Path(DirTmp, next+".mess")); string(b) != "other" {
		t.Errorf("the other file was changed: %q", b)
	}
}

func TestCommitFailuresLeaveNothing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(q *Queue) error
		begin  bool // the failure comes at Begin
	}{
		{"no tmp/", func(q *Queue) error { return os.Remove(q.Path(DirTmp, "")) }, true},
		{"no todo/ (the link fails)", func(q *Queue) error { return os.Remove(q.Path(DirTodo, "")) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := newQueue(t)
			if err := tc.break_(q); err != nil {
				t.Fatal(err)
			}
			id, err := q.Enqueue(strings.NewReader("Subject: x\n\nbody\n"), testEnv)
			if err == nil {
				t.Fatalf("queued %s", id)
			}
			if !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("error %v", err)
			}
			if !tc.begin {
				if names := entries(t, q, DirTmp); len(names) != 0 {
					t.Errorf("tmp/ holds %v", names)
				}
			}
		})
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("read error") }

func TestEnqueueReadErrorLeavesNothing(t *testing.T) {
	q := newQueue(t)
	if _, err := q.Enqueue(io.MultiReader(strings.NewReader("Subject: x\n"), failingReader{}), testEnv); err == nil || !strings.Contains(err.Error(), "read error") {
		t.Fatalf("Enqueue: %v", err)
	}
	if names := entries(t, q, DirTmp); len(names) != 0 {
		t.Errorf("tmp/ holds %v", names)
	}
	if ids, _ := q.AllIDs(); len(ids) != 0 {
		t.Errorf("queued %v", ids)
	}
}

func TestCommitAfterAbort(t *testing.T) {
	q := newQueue(t)
	p, err := q.Begin()
	if err != nil {
		t.Fatal(err)
	}
	p.Abort()
	if _, err := p.Commit(testEnv); err == nil {
		t.Fatal("Commit after Abort succeeded")
	}
	d, err := q.BeginDerived(DeriveID("1700000000.000000005.4242.7", "k"))
	if err != nil {
		t.Fatal(err)
	}
	d.Abort()
	if _, err := d.Commit(testEnv); err == nil {
		t.Fatal("derived Commit after Abort succeeded")
	}
}

// A derived message whose link into todo/ fails keeps its intent, and the
// repeat, once todo/ is back, links it (resume) without writing it again.
func TestDerivedLinkFailureKeepsTheIntent(t *testing.T) {
	q := newQueue(t)
	id := DeriveID("1700000000.000000005.4242.7", "forward 0 x@y")
	if err := os.Rename(q.Path(DirTodo, ""), q.Path("todo.away", "")); err != nil {
		t.Fatal(err)
	}
	if err := derive(t, q, id, "first\n"); err == nil || errors.Is(err, ErrQueued) {
		t.Fatalf("derive without todo/: %v", err)
	}
	if _, err := os.Stat(q.readyPath(id)); err != nil {
		t.Fatalf("intent: %v", err)
	}
	if err := os.Rename(q.Path("todo.away", ""), q.Path(DirTodo, "")); err != nil {
		t.Fatal(err)
	}
	if err := derive(t, q, id, "second\n"); !errors.Is(err, ErrQueued) {
		t.Fatalf("repeat: %v, want ErrQueued", err)
	}
	if got := readMessage(t, q, id); got != "first\n" {
		t.Fatalf("queued %q", got)
	}
}

// A derived message whose intent cannot be made (the rename fails) is
// not queued and leaves no file in tmp/: the repeat writes it anew.
func TestDerivedIntentFailureLeavesNothing(t *testing.T) {
	q := newQueue(t)
	id := DeriveID("1700000000.000000005.4242.7", "forward 0 x@y")
	d, err := q.BeginDerived(id)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(d, "first\n")
	// A non-empty directory in the intent's place: rename(2) refuses it.
	if err := os.MkdirAll(q.readyPath(id)+"/x", 0o750); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Commit(testEnv); err == nil {
		t.Fatal("Commit succeeded")
	}
	if _, err := os.Stat(q.Path(DirTmp, id+".mess")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("tmp/%s.mess: %v", id, err)
	}
	if ids, _ := q.AllIDs(); len(ids) != 0 {
		t.Errorf("queued %v", ids)
	}
}
