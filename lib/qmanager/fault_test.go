package qmanager

import (
	"context"
	"testing"

	"omail/lib/crashpoint"
	"omail/lib/crashpoint/faulttest"
	"omail/lib/local"
	"omail/lib/outcome"
	"omail/lib/queue"
)

// A disk error at any file operation of a delivery (the mess/ mark, the
// state written to info/, todo/ removed, the file cut back, the finished
// message's state removed) fails the pass; the next pass finishes the message,
// and each recipient's mailbox holds it once. The fake mailbox plays the
// local transport's search for an earlier copy: a recipient delivered
// before is found again, unless the attempt is marked first, which would
// be a second copy.
func TestDeliveryResumeFaults(t *testing.T) {
	faulttest.RunResume(t, func(t *testing.T) faulttest.Case {
		f := newFixture(t, map[string]string{"locals": "test.example"})
		box := map[string]int{}
		deferred := false
		f.m.T.LocalPart = func(ctx context.Context, msgPath string, msgLen int64, sender, rcpt string) outcome.Result {
			if box[rcpt] > 0 && !local.IsFirstAttempt(ctx) {
				return ok(rcpt) // the search finds the copy
			}
			if rcpt == "carol@test.example" && !deferred {
				deferred = true // once, so that the state goes to info/ and the file is cut
				return outcome.Result{Status: outcome.Temp, Text: "mailbox busy"}
			}
			box[rcpt]++
			return ok(rcpt)
		}
		f.m.T.Local = func(ctx context.Context, msgPath, sender, rcpt string) outcome.Result {
			return f.m.T.LocalPart(ctx, msgPath, -1, sender, rcpt)
		}
		id := f.enqueue("s@elsewhere.example", "bob@test.example", "carol@test.example")
		return faulttest.Case{
			Dir: f.m.Q.Path("", ""),
			Try: func(h crashpoint.Hook) error {
				f.m.Q.Crash = h
				defer func() { f.m.Q.Crash = nil }()
				if err := f.m.Flush(context.Background()); err != nil {
					return err
				}
				if f.m.exists(queue.DirTodo, id) || f.m.exists(queue.DirInfo, id) {
					// Deferred (carol), not failed: the next pass.
					return f.m.Flush(context.Background())
				}
				return nil
			},
			Done: func(t *testing.T) {
				for _, r := range []string{"bob@test.example", "carol@test.example"} {
					if box[r] != 1 {
						t.Errorf("%s has the message %d times", r, box[r])
					}
				}
				f.wantEmpty()
				if f.m.exists(queue.DirMess, id) {
					t.Errorf("mess/%s left", id)
				}
			},
		}
	}, "queue-message-", "queue-info-", "queue-todo-", "queue-trim-", "queue-finish-")
}
