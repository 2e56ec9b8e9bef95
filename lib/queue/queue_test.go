package queue

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"omail/lib/envelope"
)

func newQueue(t *testing.T) *Queue {
	t.Helper()
	q := &Queue{Dir: filepath.Join(t.TempDir(), "queue"), Now: func() time.Time { return time.Unix(1700000000, 5) }}
	if err := q.Init(); err != nil {
		t.Fatal(err)
	}
	return q
}

func entries(t *testing.T, q *Queue, sub string) []string {
	t.Helper()
	des, err := os.ReadDir(filepath.Join(q.Dir, sub))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range des {
		out = append(out, d.Name())
	}
	return out
}

func TestCommit(t *testing.T) {
	q := newQueue(t)
	env := &envelope.Envelope{Sender: "a@example.org", Rcpts: []string{"b@example.net", "c@example.net"}}
	id, err := q.Enqueue(strings.NewReader("Subject: x\n\nbody\n"), env)
	if err != nil {
		t.Fatal(err)
	}
	if got := entries(t, q, DirTmp); len(got) != 0 {
		t.Errorf("tmp not empty after commit: %v", got)
	}
	if got := entries(t, q, DirTodo); !reflect.DeepEqual(got, []string{id}) {
		t.Errorf("todo = %v, want [%s]", got, id)
	}
	if got := entries(t, q, DirMess); len(got) != 0 {
		t.Errorf("mess/ holds %v before a deliverer took the message", got)
	}
	ents, err := q.Scan()
	if err != nil || len(ents) != 1 || ents[0].Size != int64(len("Subject: x\n\nbody\n")) {
		t.Fatalf("Scan = %+v, %v", ents, err)
	}
	if msg := unfold(t, q, id); msg != "Subject: x\n\nbody\n" {
		t.Errorf("message = %q", msg)
	}
	ents, err = q.Scan()
	if err != nil || len(ents) != 1 {
		t.Fatalf("Scan = %v, %v", ents, err)
	}
	st := ents[0].State
	if st.Sender != env.Sender || len(st.Rcpts) != 2 || st.Rcpts[1].Addr != "c@example.net" || st.Rcpts[0].Status != Todo || st.Queued != 1700000000 {
		t.Errorf("state = %+v", st)
	}
	var out bytes.Buffer
	q.List(&out)
	if !strings.Contains(out.String(), "pending  <b@example.net>") || !strings.Contains(out.String(), "from <a@example.org>") {
		t.Errorf("listing:\n%s", out.String())
	}
}

func TestAbortLeavesNothing(t *testing.T) {
	q := newQueue(t)
	p, err := q.Begin()
	if err != nil {
		t.Fatal(err)
	}
	p.Write([]byte("half a message"))
	p.Abort()
	for _, d := range []string{DirTmp, DirMess, DirTodo, DirInfo} {
		if got := entries(t, q, d); len(got) != 0 {
			t.Errorf("%s not empty after abort: %v", d, got)
		}
	}
}

func TestCommitNeverOverwrites(t *testing.T) {
	q := newQueue(t)
	p, _ := q.Begin()
	// Someone else's message already holds this id in todo/.
	os.WriteFile(q.Path(DirTodo, p.ID()), []byte("theirs"), 0o600)
	p.Write([]byte("mine"))
	if _, err := p.Commit(&envelope.Envelope{Sender: "", Rcpts: []string{"x@y"}}); err == nil {
		t.Fatal("commit over an existing message succeeded")
	}
	if b, _ := os.ReadFile(q.Path(DirTodo, p.ID())); string(b) != "theirs" {
		t.Errorf("the other message was touched: %q", b)
	}
	if got := entries(t, q, DirTmp); len(got) != 0 {
		t.Errorf("tmp after failed commit: %v", got)
	}
}

func TestUniqueIDsUnderConcurrency(t *testing.T) {
	q := newQueue(t)
	q.Now = time.Now
	var mu sync.Mutex
	seen := map[string]bool{}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 25; j++ {
				id, err := q.Enqueue(strings.NewReader("x\n"), &envelope.Envelope{Rcpts: []string{"a@b"}})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if seen[id] {
					t.Errorf("duplicate id %s", id)
				}
				seen[id] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if n := len(entries(t, q, DirTodo)); n != 200 {
		t.Errorf("%d messages in todo, want 200", n)
	}
}

func TestStateRoundTrip(t *testing.T) {
	st := &State{ID: "1.2.3.4", Queued: 1700000000, Sender: "", Rcpts: []Rcpt{
		{Addr: "a@b", Status: Todo},
		{Addr: "weird name with spaces@b", Status: Todo, Attempts: 3, NextTry: 1700000600, LastError: "4.2.2 mailbox full"},
		{Addr: "c@d", Status: Done},
		{Addr: "e@f", Status: Failed, LastError: "5.1.1 no\nsuch\x00user"},
		{Addr: "g@h", Status: Bounced},
	}}
	got, err := ParseState(st.ID, st.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	st.Rcpts[3].LastError = "5.1.1 no such user" // control characters become spaces
	if !reflect.DeepEqual(got, st) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, st)
	}
	if next, ok := got.NextTry(); !ok || next != 0 {
		t.Errorf("NextTry = %d, %v", next, ok)
	}
	if !got.Open() {
		t.Error("state with todo recipients is not open")
	}
}

func TestParseStateRejectsDamage(t *testing.T) {
	good := (&State{Queued: 1, Sender: "s@x", Rcpts: []Rcpt{{Addr: "a@b", Status: Todo}}}).Marshal()
	for i := 0; i < len(good); i++ {
		if _, err := ParseState("x", good[:i]); err == nil {
			t.Errorf("truncated at %d of %d: accepted", i, len(good))
		}
	}
	for _, bad := range []string{
		"V2\x00Q1\x00Fs\x00RT 0 0 a@b\x00.\x00",
		"V1\x00Q1\x00Fs\x00RX 0 0 a@b\x00.\x00",
		"V1\x00Q1\x00Fs\x00RT -1 0 a@b\x00.\x00",
		"V1\x00Q1\x00Fs\x00E orphan\x00RT 0 0 a@b\x00.\x00",
		"V1\x00Q1\x00Fs\x00.\x00",
		"V1\x00Qx\x00Fs\x00RT 0 0 a@b\x00.\x00",
	} {
		if _, err := ParseState("x", []byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func FuzzParseState(f *testing.F) {
	f.Add((&State{Queued: 1, Sender: "s@x", Rcpts: []Rcpt{{Addr: "a@b", Status: Todo, LastError: "e"}}}).Marshal())
	f.Add([]byte("V1\x00Q0\x00F\x00RD 1 2 x@y\x00.\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := ParseState("id", data)
		if err != nil {
			return
		}
		// What parses must survive a round trip unchanged.
		again, err := ParseState("id", st.Marshal())
		if err != nil || !reflect.DeepEqual(again, st) {
			t.Fatalf("round trip of %q: %+v vs %+v (%v)", data, st, again, err)
		}
	})
}

func TestIDOrder(t *testing.T) {
	if !IDLess("999.000000001.5.1", "1000.000000000.1.1") {
		t.Error("ids do not sort numerically")
	}
	if !ValidID("1700000000.000000005.42.1") || ValidID("../x") || ValidID("") || ValidID("1.2.mess") ||
		ValidID(".1700000000.000000005.42.15944504559462525916") || ValidID("1.2.3") || ValidID("1..2.3") {
		t.Error("ValidID")
	}
}

// unfold does what a deliverer does with a freshly committed message
// (LinkMessage, lock, ReadTodo, Unfold) and returns the message.
func unfold(t *testing.T, q *Queue, id string) string {
	t.Helper()
	linked, err := q.LinkMessage(id)
	if err != nil || !linked {
		t.Fatalf("LinkMessage = %v, %v", linked, err)
	}
	f, err := os.Open(q.Path(DirMess, id))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data, msgLen, err := q.ReadTodo(id)
	if err != nil || msgLen < 1 {
		t.Fatalf("ReadTodo: %d %v", msgLen, err)
	}
	st, err := ParseState(id, data)
	if err != nil {
		t.Fatal(err)
	}
	st.Dir = DirTodo
	if err := q.Unfold(f, st, msgLen); err != nil {
		t.Fatal(err)
	}
	msg, err := os.ReadFile(q.Path(DirMess, id))
	if err != nil {
		t.Fatal(err)
	}
	return string(msg)
}
