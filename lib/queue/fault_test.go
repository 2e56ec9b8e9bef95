package queue

import (
	"errors"
	"os"
	"strings"
	"testing"

	"omail/lib/crashpoint"
	"omail/lib/crashpoint/faulttest"
	"omail/lib/envelope"
)

// A disk error at any write or file operation of the commit (omail-queue,
// in-process queueing) fails it, leaves the queue as it was, and the
// next try queues the message.
func TestCommitFaults(t *testing.T) {
	faulttest.Run(t, func(t *testing.T) faulttest.Case {
		q := newQueue(t)
		if _, err := q.Enqueue(strings.NewReader("Subject: there before\n\n"), &envelope.Envelope{Sender: "a@b", Rcpts: []string{"c@d"}}); err != nil {
			t.Fatal(err)
		}
		return faulttest.Case{Dir: q.Dir, Try: func(h crashpoint.Hook) error {
			q.Crash = h
			s, code, err := Submit(strings.TrimSuffix(q.Dir, "/queue"), h)
			if err != nil {
				t.Fatalf("submit: %d %v", code, err)
			}
			s.q.Now = q.Now
			if _, err := s.Write([]byte("Subject: faulted\n\n" + strings.Repeat("body\n", 10000))); err != nil {
				s.Abort() // as omail-queue does
				return err
			}
			_, err = s.Commit(&envelope.Envelope{Sender: "x@y", Rcpts: []string{"z@w"}})
			return err
		}}
	}, "queue-")
}

// A derived message (forward, bounce) fails without a trace before its
// intent is durable; after that the intent stays and a repeat finds the
// message queued, once.
func TestDerivedFaults(t *testing.T) {
	const id = "1700000000.000000005.1.7"
	try := func(q *Queue) func(h crashpoint.Hook) error {
		return func(h crashpoint.Hook) error {
			q.Crash = h
			d, err := q.BeginDerived(id)
			if err != nil {
				return err
			}
			defer d.Abort()
			d.Write([]byte("Subject: forward\n\nbody\n"))
			_, err = d.Commit(&envelope.Envelope{Sender: "a@b", Rcpts: []string{"c@d"}})
			return err
		}
	}
	faulttest.Run(t, func(t *testing.T) faulttest.Case {
		q := newQueue(t)
		return faulttest.Case{Dir: q.Dir, Try: try(q)}
	}, faulttest.Only("derived-fsync", "derived-rename")...)

	for _, point := range []string{"derived-link", "derived-dirsync"} {
		t.Run(point, func(t *testing.T) {
			q := newQueue(t)
			h, _ := crashpoint.Parse("", "", "", point+"=EIO")
			var f *crashpoint.Fault
			if err := try(q)(h); !errors.As(err, &f) {
				t.Fatalf("with the fault: %v", err)
			}
			if _, err := os.Stat(q.readyPath(id)); err != nil {
				t.Fatalf("no intent after the fault: %v", err)
			}
			// The repeat resumes: ErrQueued, the message in todo/ once.
			h, _ = crashpoint.Parse("", "", "", "derived-resume-link=ENOSPC")
			if err := try(q)(h); point == "derived-link" && !errors.As(err, &f) {
				t.Fatalf("resume with a fault: %v", err)
			}
			if err := try(q)(nil); !errors.Is(err, ErrQueued) {
				t.Fatalf("repeat: %v", err)
			}
			if got := entries(t, q, DirTodo); len(got) != 1 || got[0] != id {
				t.Errorf("todo/ %q", got)
			}
		})
	}
}
