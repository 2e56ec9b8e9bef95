package queue

import (
	"path/filepath"
	"strings"
	"testing"

	"omail/lib/envelope"
	"omail/lib/qexit"
)

// A submission lands in the queue with omail-queue's Received: line in
// front, only at Commit; an aborted one leaves nothing.
func TestSubmit(t *testing.T) {
	h := t.TempDir()
	q := New(h)
	if err := q.Init(); err != nil {
		t.Fatal(err)
	}
	s, code, err := Submit(h, nil)
	if err != nil || code != qexit.OK {
		t.Fatalf("Submit: %d %v", code, err)
	}
	s.Write([]byte("Subject: hi\n\nbody\n"))
	if got := entries(t, q, DirTodo); len(got) != 0 {
		t.Fatalf("todo/ holds %v before Commit", got)
	}
	if code, err := s.Commit(&envelope.Envelope{Sender: "a@b", Rcpts: []string{"c@d"}}); code != qexit.OK || err != nil {
		t.Fatalf("Commit: %d %v", code, err)
	}
	s.Abort() // after Commit: nothing
	todo := entries(t, q, DirTodo)
	if len(todo) != 1 {
		t.Fatalf("todo/ holds %v", todo)
	}
	msg := unfold(t, q, todo[0])
	if !strings.HasPrefix(string(msg), "Received: (omail-queue ") || !strings.HasSuffix(string(msg), "\nSubject: hi\n\nbody\n") {
		t.Errorf("message: %q", msg)
	}

	s, _, err = Submit(h, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Write([]byte("Subject: never\n"))
	s.Abort()
	if got := entries(t, q, DirTodo); len(got) != 0 {
		t.Errorf("todo/ holds %v after an abort", got)
	}
	if got := entries(t, q, DirTmp); len(got) != 0 {
		t.Errorf("tmp/ holds %v after an abort", got)
	}
}

// Submit gives omail-queue's codes for a missing home and queue.
func TestSubmitRefuses(t *testing.T) {
	h := t.TempDir()
	if _, code, err := Submit(filepath.Join(h, "none"), nil); code != qexit.HomeError || err == nil {
		t.Errorf("no home: %d %v", code, err)
	}
	if _, code, err := Submit(h, nil); code != qexit.QueueError || err == nil {
		t.Errorf("no queue: %d %v", code, err)
	}
}

// ReadEnvelope maps what is wrong with an envelope onto qmail-queue's
// codes.
func TestReadEnvelope(t *testing.T) {
	for _, c := range []struct {
		in   string
		code int
	}{
		{"Fa@b\x00Tc@d\x00\x00", qexit.OK},
		{"Fa@b\x00Tc@d\x00", qexit.ReadError},
		{"Xa@b\x00\x00", qexit.EnvelopeFormat},
		{"Fa@b\x00T" + strings.Repeat("x", 2000) + "@d\x00\x00", qexit.AddressTooLong},
	} {
		_, code, err := ReadEnvelope(strings.NewReader(c.in))
		if code != c.code || (code == qexit.OK) != (err == nil) {
			t.Errorf("%q: %d %v, want %d", c.in, code, err, c.code)
		}
	}
}
