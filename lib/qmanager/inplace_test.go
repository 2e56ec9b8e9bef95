package qmanager

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"

	"omail/lib/outcome"
	"omail/lib/queue"
	"omail/lib/route"
)

const fixtureMessage = "Subject: test\n\nbody\n" // what fixture.enqueue queues

// readPart reads the first n bytes of path (the whole file for n < 0).
func readPart(t *testing.T, path string, n int64) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Error(err)
		return ""
	}
	defer f.Close()
	var r io.Reader = f
	if n >= 0 {
		r = io.LimitReader(f, n)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Error(err)
	}
	return string(b)
}

// localPart is a LocalPart transport that checks it is handed exactly the
// message, and what is on disk while it delivers, then returns res(rcpt).
func (f *fixture) localPart(res func(rcpt string) outcome.Result) {
	f.m.T.LocalPart = func(ctx context.Context, msgPath string, msgLen int64, sender, rcpt string) outcome.Result {
		id := msgPath[strings.LastIndexByte(msgPath, '/')+1:]
		if got := readPart(f.t, msgPath, msgLen); got != fixtureMessage {
			f.t.Errorf("LocalPart got %q (msgLen %d), want the message", got, msgLen)
		}
		if fi, err := os.Stat(msgPath); err != nil || fi.Size() <= msgLen {
			f.t.Errorf("LocalPart: the file is not the whole todo/ entry (%v)", err)
		}
		if f.count("part:"+rcpt) == 0 && len(f.calls) == 0 && (f.m.exists(queue.DirInfo, id) || !f.m.exists(queue.DirTodo, id)) {
			f.t.Errorf("LocalPart: the state is not (only) in todo/ at the first delivery")
		}
		f.bump("part:" + rcpt)
		return res(rcpt)
	}
	f.m.T.Local = func(ctx context.Context, msgPath, sender, rcpt string) outcome.Result {
		if got := readPart(f.t, msgPath, -1); got != fixtureMessage {
			f.t.Errorf("Local got %q, want the message alone", got)
		}
		f.bump("whole:" + rcpt)
		return res(rcpt)
	}
}

// remoteWants makes the Remote transport check that it is handed want,
// the whole file, and succeed.
func (f *fixture) remoteWants(want string) {
	f.m.T.Remote = func(ctx context.Context, dest route.Dest, msgPath, sender string, rcpts []string) []outcome.Result {
		if got := readPart(f.t, msgPath, -1); got != want {
			f.t.Errorf("Remote got %q, want %q", got, want)
		}
		f.bump("remote")
		return []outcome.Result{{Status: outcome.OK}}
	}
}

// wantEmpty checks that the queue holds no message.
func (f *fixture) wantEmpty() {
	f.t.Helper()
	if m := f.messages(); len(m) != 0 {
		f.t.Errorf("queue not empty: %v", m)
	}
}

func ok(string) outcome.Result { return outcome.Result{Status: outcome.OK, Text: "delivered"} }

// A message delivered by its first attempt is delivered from inside
// todo/ID, and finishing it is removing todo/ID: info/ is never written.
// With several recipients, each one's outcome is written down before the
// next is tried, as before (info/ from the second on).
func TestFirstAttemptDeliversFromTodo(t *testing.T) {
	for _, rcpts := range [][]string{{"bob@test.example"}, {"bob@test.example", "carol@test.example"}} {
		f := newFixture(t, map[string]string{"locals": "test.example"})
		f.localPart(ok)
		var finished []string // what was on disk at the finish
		f.m.Q.Crash = func(point string) {
			if point == "queue-finish" {
				for _, d := range []string{queue.DirTodo, queue.DirInfo} {
					n, _ := f.m.Q.Names(d)
					finished = append(finished, d+":"+strings.Join(n, ","))
				}
			}
		}
		id := f.enqueue("s@elsewhere.example", rcpts...)
		f.flush()
		for _, r := range rcpts {
			if f.count("part:"+r) != 1 {
				t.Errorf("%s: calls = %v", r, f.calls)
			}
		}
		if len(f.calls) != len(rcpts) {
			t.Errorf("calls = %v", f.calls)
		}
		if len(rcpts) == 1 && strings.Join(finished, " ") != "todo:"+id+" info:" {
			t.Errorf("at the finish: %v, want the entry in todo/ and info/ empty", finished)
		}
		for _, d := range []string{queue.DirMess, queue.DirInfo, queue.DirTodo} {
			if f.m.exists(d, id) {
				t.Errorf("%s/%s still there", d, id)
			}
		}
	}
}

// A first attempt that leaves a recipient for later writes the state to
// info/ then, with the message's length, removes todo/ID and cuts the
// file back: the next attempt reads the message alone.
func TestFirstAttemptDeferralGoesToInfo(t *testing.T) {
	f := newFixture(t, map[string]string{"locals": "test.example"})
	carol := outcome.Result{Status: outcome.Temp, Text: "mailbox busy"}
	f.localPart(func(rcpt string) outcome.Result {
		if rcpt == "carol@test.example" {
			return carol
		}
		return ok(rcpt)
	})
	id := f.enqueue("s@elsewhere.example", "bob@test.example", "carol@test.example")
	f.flush()
	if f.m.exists(queue.DirTodo, id) || !f.m.exists(queue.DirInfo, id) {
		t.Fatalf("after a deferral: todo/ %v, info/ %v; want the state in info/ only", f.m.exists(queue.DirTodo, id), f.m.exists(queue.DirInfo, id))
	}
	st := f.messages()[id]
	if st == nil || st.MessageLen != int64(len(fixtureMessage)) {
		t.Fatalf("state in info/ = %+v, want the message's length recorded", st)
	}
	if got := readPart(t, f.m.Q.Path(queue.DirMess, id), -1); got != fixtureMessage {
		t.Errorf("mess/%s = %q, want it cut back to the message", id, got)
	}
	carol = outcome.Result{Status: outcome.OK}
	f.advance(Backoff(1))
	f.flush()
	if f.count("part:bob@test.example") != 1 || f.count("part:carol@test.example") != 1 || f.count("whole:carol@test.example") != 1 {
		t.Errorf("calls = %v", f.calls)
	}
	f.wantEmpty()
}

// A recipient for a transport that reads the file whole (SMTP here) makes
// the attempt take the entry apart first, as before: every transport then
// gets the message alone.
func TestOtherTransportTakesTheEntryApart(t *testing.T) {
	f := newFixture(t, map[string]string{"locals": "test.example"})
	f.localPart(ok)
	f.remoteWants(fixtureMessage)
	f.enqueue("s@elsewhere.example", "bob@test.example", "x@elsewhere.example")
	f.flush()
	if f.count("whole:bob@test.example") != 1 || f.count("remote") != 1 || len(f.calls) != 2 {
		t.Errorf("calls = %v", f.calls)
	}
	f.wantEmpty()
}

// A file with a third name (a derived message's intent in tmp/) is taken
// apart first, so that finishing it leaves the intent cut back to the
// message, which is how a retry of its original knows it was delivered.
func TestThirdNameTakesTheEntryApart(t *testing.T) {
	f := newFixture(t, map[string]string{"locals": "test.example"})
	f.localPart(ok)
	id := f.enqueue("s@elsewhere.example", "bob@test.example")
	intent := f.m.Q.Path(queue.DirTmp, id+".ready")
	if err := os.Link(f.m.Q.Path(queue.DirTodo, id), intent); err != nil {
		t.Fatal(err)
	}
	f.flush()
	if f.count("whole:bob@test.example") != 1 || len(f.calls) != 1 {
		t.Errorf("calls = %v", f.calls)
	}
	if got := readPart(t, intent, -1); got != fixtureMessage {
		t.Errorf("the third name holds %q, want the message cut back", got)
	}
}

// A forward made while delivering from todo/ carries the message, never
// the envelope after it.
func TestForwardFromTodoCarriesTheMessageAlone(t *testing.T) {
	f := newFixture(t, map[string]string{"locals": "test.example"})
	f.localPart(func(rcpt string) outcome.Result {
		if rcpt == "list@test.example" {
			return outcome.Result{Status: outcome.OK, Forward: []string{"x@elsewhere.example"}, Prefix: []string{"Delivered-To: list@test.example"}}
		}
		return ok(rcpt)
	})
	id := f.enqueue("s@elsewhere.example", "list@test.example")
	f.remoteWants("Delivered-To: list@test.example\n" + fixtureMessage)
	f.flush()
	f.flush() // the forward
	if f.count("part:list@test.example") != 1 || f.count("remote") != 1 {
		t.Errorf("calls = %v", f.calls)
	}
	if f.m.exists(queue.DirTodo, id) || len(f.messages()) != 0 {
		t.Errorf("queue not empty: %v", f.messages())
	}
}

// The claim that gives an entry its name in mess/ is the first attempt;
// any later claim, the name found, may follow a crashed attempt.
func TestClaimMadeOnlyOnce(t *testing.T) {
	f := newFixture(t, map[string]string{"locals": "test.example"})
	id := f.enqueue("s@elsewhere.example", "bob@test.example")
	for i, want := range []bool{true, false} {
		lock, made, err := f.m.claimMessage(id, context.Background())
		if err != nil {
			t.Fatal(err)
		}
		lock.Close()
		if made != want {
			t.Errorf("claim %d: made = %v, want %v", i+1, made, want)
		}
	}
	if !f.m.exists(queue.DirMess, id) || !f.m.exists(queue.DirTodo, id) {
		t.Error("claiming moved the entry")
	}
}
