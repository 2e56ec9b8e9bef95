package qmanager

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"omail/lib/outcome"
	"omail/lib/queue"
)

// crashSnapshot keeps, at a crash point, what a crash there would leave
// of message id: its message and state files and the intents in tmp/
// (hard links and copies), so that restore can put them back after the
// attempt went on, as if it had been killed there.
type crashSnapshot struct {
	dir   string
	state []byte
	taken bool
}

func (s *crashSnapshot) take(t *testing.T, q *queue.Queue, id string) {
	if s.taken {
		return
	}
	s.taken = true
	var err error
	if s.state, err = os.ReadFile(q.Path(queue.DirInfo, id)); err != nil {
		t.Error(err)
	}
	if err := os.Link(q.Path(queue.DirMess, id), filepath.Join(s.dir, "mess")); err != nil {
		t.Error(err)
	}
	names, _ := q.Names(queue.DirTmp)
	for _, n := range names {
		if strings.HasSuffix(n, ".ready") {
			if err := os.Link(q.Path(queue.DirTmp, n), filepath.Join(s.dir, n)); err != nil {
				t.Error(err)
			}
		}
	}
}

func (s *crashSnapshot) restore(t *testing.T, q *queue.Queue, id string) {
	t.Helper()
	if !s.taken {
		t.Fatal("the crash point was never reached")
	}
	if err := os.WriteFile(q.Path(queue.DirInfo, id), s.state, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(s.dir, "mess"), q.Path(queue.DirMess, id)); err != nil {
		t.Fatal(err)
	}
	des, _ := os.ReadDir(s.dir)
	for _, de := range des {
		if strings.HasSuffix(de.Name(), ".ready") {
			os.Link(filepath.Join(s.dir, de.Name()), q.Path(queue.DirTmp, de.Name()))
		}
	}
}

// An attempt killed after queueing a forward or a bounce and before its
// state records it is repeated; the repeat queues nothing, whether the
// forward or bounce is still in the queue or was delivered already.
func TestRepeatedAttemptQueuesForwardAndBounceOnce(t *testing.T) {
	for _, delivered := range []bool{false, true} {
		for _, rcpt := range []string{"list@test.example", "nobody@test.example"} {
			f := newFixture(t, map[string]string{})
			f.m.T.Local = func(ctx context.Context, msgPath, sender, r string) outcome.Result {
				f.bump(r)
				switch r {
				case "list@test.example":
					return outcome.Result{Status: outcome.OK, Forward: []string{"a@test.example"}}
				case "nobody@test.example":
					return outcome.Result{Status: outcome.Perm, Text: "5.1.1 no such user: nobody"}
				}
				return outcome.Result{Status: outcome.OK}
			}
			id := f.enqueue("s@test.example", rcpt)
			snap := &crashSnapshot{dir: t.TempDir()}
			f.m.Q.Crash = func(point string) {
				if point == "derived-linked" {
					snap.take(t, f.m.Q, id)
				}
			}
			f.flush()
			f.m.Q.Crash = nil
			if delivered {
				f.flush() // the forward or bounce is delivered and removed
			}
			snap.restore(t, f.m.Q, id)
			f.flush()
			f.flush()
			f.flush()
			// The forward's delivery is repeated; the failure is not: the
			// repeat finds it written down and bounces it first.
			to, tries := "a@test.example", 2
			if rcpt == "nobody@test.example" {
				to, tries = "s@test.example", 1
			}
			if f.count(to) != 1 || f.count(rcpt) != tries || len(f.messages()) != 0 {
				t.Errorf("%s, delivered before the repeat %v: calls %v, queue %v\n%s", rcpt, delivered, f.calls, f.messages(), f.log.String())
			}
			if n, _ := f.m.Q.Names(queue.DirTmp); len(n) != 0 {
				t.Errorf("%s: tmp/ holds %v", rcpt, n)
			}
		}
	}
}
