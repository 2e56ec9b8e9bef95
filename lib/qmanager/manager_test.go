package qmanager

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"omail/lib/control"
	"omail/lib/envelope"
	"omail/lib/outcome"
	"omail/lib/queue"
	"omail/lib/remote"
	"omail/lib/route"
)

// fixture is a queue, a control directory and a clock under a test's control.
type fixture struct {
	t   *testing.T
	m   *Manager
	now time.Time
	mu  sync.Mutex
	log strings.Builder
	// calls counts deliveries per recipient, by transport.
	calls map[string]int
	// wrote is told of every log line (waitLog).
	wrote chan struct{}
	// onLog, when set, is called with each line as it is written, by
	// the goroutine writing it.
	onLog func(line string)
}

func (f *fixture) Write(b []byte) (int, error) {
	f.mu.Lock()
	select {
	case f.wrote <- struct{}{}:
	default:
	}
	n, err := f.log.Write(b)
	on := f.onLog
	f.mu.Unlock()
	if on != nil {
		on(string(b))
	}
	return n, err
}

func newFixture(t *testing.T, controls map[string]string) *fixture {
	t.Helper()
	home := t.TempDir()
	os.MkdirAll(filepath.Join(home, "control"), 0o755)
	controls["me"] = "test.example"
	for k, v := range controls {
		os.WriteFile(filepath.Join(home, "control", k), []byte(v+"\n"), 0o644)
	}
	f := &fixture{t: t, now: time.Unix(1800000000, 0), calls: map[string]int{}, wrote: make(chan struct{}, 1)}
	clock := func() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now }
	q := queue.New(home)
	q.Now = clock
	if err := q.Init(); err != nil {
		t.Fatal(err)
	}
	f.m = &Manager{Q: q, Ctl: control.New(home), Now: clock, Log: f}
	if err := f.m.Load(); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

func (f *fixture) count(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[key]
}

// localAnswers makes every local delivery count its recipient (count)
// and give res.
func (f *fixture) localAnswers(res outcome.Result) {
	f.m.T.Local = func(ctx context.Context, msgPath, sender, rcpt string) outcome.Result {
		f.bump(rcpt)
		return res
	}
}

// receive waits for a value on ch. The wait has a limit, not a timing:
// when nothing comes, the test fails with why and ok is false.
func receive[T any](t *testing.T, ch <-chan T, why string) (v T, ok bool) {
	t.Helper()
	select {
	case v = <-ch:
		return v, true
	case <-time.After(30 * time.Second):
		t.Error(why)
		return v, false
	}
}

func (f *fixture) bump(key string) {
	f.mu.Lock()
	f.calls[key]++
	f.mu.Unlock()
}

func (f *fixture) enqueue(sender string, rcpts ...string) string {
	f.t.Helper()
	id, err := f.m.Q.Enqueue(strings.NewReader("Subject: test\n\nbody\n"), &envelope.Envelope{Sender: sender, Rcpts: rcpts})
	if err != nil {
		f.t.Fatal(err)
	}
	return id
}

func (f *fixture) flush() {
	f.t.Helper()
	if err := f.m.Flush(context.Background()); err != nil {
		f.t.Fatal(err)
	}
}

// messages returns the queue's entries by id.
func (f *fixture) messages() map[string]*queue.State {
	f.t.Helper()
	ents, err := f.m.Q.Scan()
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string]*queue.State{}
	for _, e := range ents {
		if e.Err != nil {
			f.t.Fatalf("msg %s: %v", e.ID, e.Err)
		}
		out[e.ID] = e.State
	}
	return out
}

func TestLocalDeliveryFinishesTheMessage(t *testing.T) {
	f := newFixture(t, map[string]string{})
	f.m.T.Local = func(ctx context.Context, msgPath, sender, rcpt string) outcome.Result {
		b, err := os.ReadFile(msgPath)
		if err != nil || !strings.Contains(string(b), "body") {
			t.Errorf("local transport got %q, %v", b, err)
		}
		f.bump(rcpt)
		return outcome.Result{Status: outcome.OK, Text: "delivered"}
	}
	id := f.enqueue("a@elsewhere.example", "bob@test.example", "carol@test.example")
	f.flush()
	if f.count("bob@test.example") != 1 || f.count("carol@test.example") != 1 {
		t.Errorf("calls = %v", f.calls)
	}
	if len(f.messages()) != 0 {
		t.Errorf("queue not empty: %v", f.messages())
	}
	for _, d := range []string{queue.DirMess, queue.DirInfo, queue.DirTodo} {
		if _, err := os.Stat(f.m.Q.Path(d, id)); !os.IsNotExist(err) {
			t.Errorf("%s/%s still there", d, id)
		}
	}
	if !strings.Contains(f.log.String(), "delivery msg "+id+" to <bob@test.example>: success: delivered") {
		t.Errorf("log:\n%s", f.log.String())
	}
}

// A transport that returns the zero Result has not delivered: every
// transport's recipient is left to do, deferred, never recorded as done.
func TestZeroResultDefers(t *testing.T) {
	f := newFixture(t, map[string]string{"ocmproutes": "kiosk.example:kiosk1", "smtproutes": "far.example:[127.0.0.1]:1"})
	f.localAnswers(outcome.Result{})
	f.m.T.OCMP = func(ctx context.Context, endpoint, id, msgPath, sender string, rcpts []string) outcome.Result {
		f.bump(endpoint)
		return outcome.Result{}
	}
	f.m.T.Remote = func(ctx context.Context, dest route.Dest, msgPath, sender string, rcpts []string) []outcome.Result {
		f.bump(dest.Key())
		return make([]outcome.Result, len(rcpts))
	}
	rcpts := []string{"bob@test.example", "a@kiosk.example", "c@far.example"}
	id := f.enqueue("s@test.example", rcpts...)
	f.flush()
	if len(f.calls) != 3 {
		t.Fatalf("transports called: %v", f.calls)
	}
	st := f.messages()[id]
	if st == nil || len(st.Rcpts) != len(rcpts) {
		t.Fatalf("message gone or changed: %+v", st)
	}
	for i, r := range st.Rcpts {
		if r.Addr != rcpts[i] || r.Status != queue.Todo || r.Attempts != 1 || r.NextTry <= f.now.Unix() {
			t.Errorf("recipient %d: %+v, want to do, deferred", i, r)
		}
	}
	if strings.Contains(f.log.String(), "success") || strings.Count(f.log.String(), ": deferral: ") != 3 {
		t.Errorf("log:\n%s", f.log.String())
	}
}

func TestRetryThenExpireThenBounce(t *testing.T) {
	f := newFixture(t, map[string]string{"queuelifetime": "3600"})
	fail := true
	f.m.T.Local = func(ctx context.Context, msgPath, sender, rcpt string) outcome.Result {
		f.bump(rcpt)
		if rcpt == "sender@test.example" {
			return outcome.Result{Status: outcome.OK, Text: "delivered"}
		}
		if fail {
			return outcome.Result{Status: outcome.Temp, Text: "4.2.2 mailbox busy"}
		}
		return outcome.Result{Status: outcome.OK}
	}
	id := f.enqueue("sender@test.example", "busy@test.example")
	f.flush()
	st := f.messages()[id]
	if st == nil || st.Rcpts[0].Status != queue.Todo || st.Rcpts[0].Attempts != 1 || st.Rcpts[0].LastError != "4.2.2 mailbox busy" {
		t.Fatalf("after one failure: %+v", st)
	}
	if want := f.now.Add(time.Minute).Unix(); st.Rcpts[0].NextTry != want {
		t.Errorf("next try %d, want %d", st.Rcpts[0].NextTry, want)
	}
	// An attempt that is not a flush leaves a recipient alone before
	// its time.
	if _, _, err := f.m.attempt(context.Background(), id, false); err != nil {
		t.Fatal(err)
	}
	if f.count("busy@test.example") != 1 {
		t.Errorf("retried before its time")
	}
	// After the lifetime, the next failure is final and bounces.
	f.advance(2 * time.Hour)
	f.flush()
	if f.count("busy@test.example") != 2 {
		t.Errorf("calls = %v", f.calls)
	}
	msgs := f.messages()
	if _, ok := msgs[id]; ok {
		t.Errorf("expired message still queued: %+v", msgs[id])
	}
	if len(msgs) != 1 {
		t.Fatalf("want exactly the bounce in the queue, have %d", len(msgs))
	}
	for bid, b := range msgs {
		if b.Sender != "" || b.Rcpts[0].Addr != "sender@test.example" {
			t.Errorf("bounce envelope: %+v", b)
		}
		body := f.message(bid)
		for _, want := range []string{
			"Content-Type: multipart/report; report-type=delivery-status;",
			"Final-Recipient: rfc822; busy@test.example",
			"Action: failed",
			"Status: 4.2.2",
			"message expired after 1h0m0s in the queue; last error: 4.2.2 mailbox busy",
			"Content-Type: message/rfc822",
			"Subject: test",
			"From: MAILER-DAEMON@test.example",
		} {
			if !strings.Contains(string(body), want) {
				t.Errorf("bounce lacks %q:\n%s", want, body)
			}
		}
	}
	// The bounce itself is delivered and the queue empties.
	f.flush()
	if len(f.messages()) != 0 || f.count("sender@test.example") != 1 {
		t.Errorf("bounce not delivered: %v %v", f.messages(), f.calls)
	}
}

func TestPermanentFailureBouncesOnlyThatRecipient(t *testing.T) {
	f := newFixture(t, map[string]string{})
	f.m.T.Local = func(ctx context.Context, msgPath, sender, rcpt string) outcome.Result {
		f.bump(rcpt)
		if strings.HasPrefix(rcpt, "nobody@") {
			return outcome.Result{Status: outcome.Perm, Text: "5.1.1 no such user: nobody"}
		}
		return outcome.Result{Status: outcome.OK, Text: "delivered"}
	}
	f.enqueue("x@remote.example", "bob@test.example", "nobody@test.example")
	f.m.T.Remote = func(ctx context.Context, dest route.Dest, msgPath, sender string, rcpts []string) []outcome.Result {
		for _, r := range rcpts {
			f.bump("remote:" + r)
		}
		return []outcome.Result{{Status: outcome.OK}}
	}
	f.flush()
	if f.count("bob@test.example") != 1 || f.count("nobody@test.example") != 1 {
		t.Errorf("calls = %v", f.calls)
	}
	msgs := f.messages()
	if len(msgs) != 1 {
		t.Fatalf("want one bounce queued, have %v", msgs)
	}
	for _, b := range msgs {
		if b.Rcpts[0].Addr != "x@remote.example" || b.Sender != "" {
			t.Errorf("bounce envelope %+v", b)
		}
	}
	f.flush() // the bounce goes out by SMTP
	if f.count("remote:x@remote.example") != 1 || len(f.messages()) != 0 {
		t.Errorf("bounce not sent: %v", f.calls)
	}
}

func TestBounceOfABounceEndsAtPostmaster(t *testing.T) {
	f := newFixture(t, map[string]string{})
	f.localAnswers(outcome.Result{Status: outcome.Perm, Text: "5.1.1 unknown"})
	f.enqueue("", "gone@test.example") // a bounce to a vanished user
	f.flush()                          // fails: double bounce to postmaster
	msgs := f.messages()
	if len(msgs) != 1 {
		t.Fatalf("want the double bounce, have %v", msgs)
	}
	for _, b := range msgs {
		if b.Sender != DoubleBounceSender || b.Rcpts[0].Addr != "postmaster@test.example" {
			t.Errorf("double bounce envelope %+v", b)
		}
	}
	f.flush() // postmaster fails too: discarded, no loop
	if len(f.messages()) != 0 {
		t.Errorf("queue not empty: %v", f.messages())
	}
	if !strings.Contains(f.log.String(), "double bounce failed, discarded") {
		t.Errorf("log:\n%s", f.log.String())
	}
}

func TestHoldRemoteWaitsForAFlush(t *testing.T) {
	f := newFixture(t, map[string]string{"holdremote": "1", "smtproutes": ":relay.example"})
	f.localAnswers(outcome.Result{Status: outcome.OK})
	f.m.T.Remote = func(ctx context.Context, dest route.Dest, msgPath, sender string, rcpts []string) []outcome.Result {
		if dest.Relay != "relay.example" {
			t.Errorf("dest %+v", dest)
		}
		for _, r := range rcpts {
			f.bump(r)
		}
		return []outcome.Result{{Status: outcome.OK}, {Status: outcome.OK}}
	}
	id := f.enqueue("a@test.example", "local@test.example", "x@far.example", "y@far.example")
	next, open, err := f.m.attempt(context.Background(), id, false)
	if err != nil || !open || next != Never {
		t.Fatalf("attempt = %d, %v, %v; want Never, open", next, open, err)
	}
	if f.count("local@test.example") != 1 || f.count("x@far.example") != 0 {
		t.Errorf("after a normal attempt: %v", f.calls)
	}
	f.flush()
	if f.count("x@far.example") != 1 || f.count("y@far.example") != 1 || len(f.messages()) != 0 {
		t.Errorf("after a flush: %v, %v", f.calls, f.messages())
	}
}

func TestTwoDeliverersNeverDeliverTwice(t *testing.T) {
	f := newFixture(t, map[string]string{})
	local := func(ctx context.Context, msgPath, sender, rcpt string) outcome.Result {
		f.bump(rcpt)
		return outcome.Result{Status: outcome.OK}
	}
	f.m.T.Local = local
	var rcpts []string
	for i := 0; i < 30; i++ {
		r := "u" + string(rune('a'+i%26)) + strings.Repeat("x", i/26) + "@test.example"
		rcpts = append(rcpts, r)
		f.enqueue("s@test.example", r)
	}
	other := &Manager{Q: f.m.Q, Ctl: f.m.Ctl, Now: f.m.Now, Log: f, T: Transports{Local: local}}
	if err := other.Load(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, m := range []*Manager{f.m, other} {
		wg.Add(1)
		go func(m *Manager) {
			defer wg.Done()
			if err := m.Flush(context.Background()); err != nil {
				t.Error(err)
			}
		}(m)
	}
	wg.Wait()
	for _, r := range rcpts {
		if n := f.count(r); n != 1 {
			t.Errorf("%s delivered %d times", r, n)
		}
	}
}

func TestDamagedStateGoesToCorrupt(t *testing.T) {
	// A single-file entry whose footer is damaged, one whose state is,
	// and an older-layout message whose envelope file is garbage: each
	// is set aside whole, nothing is delivered or deleted.
	for _, tc := range []struct {
		name   string
		damage func(f *fixture, id string)
		want   []string // in corrupt/, after the id
	}{
		{"footer", func(f *fixture, id string) {
			p := f.m.Q.Path(queue.DirTodo, id)
			b, _ := os.ReadFile(p)
			b[len(b)-2] = 'x'
			os.WriteFile(p, b, 0o640)
		}, []string{".todo"}},
		{"state", func(f *fixture, id string) {
			p := f.m.Q.Path(queue.DirTodo, id)
			b, _ := os.ReadFile(p)
			i := bytes.Index(b, []byte("V1\x00Q"))
			copy(b[i:], "V9")
			os.WriteFile(p, b, 0o640)
		}, []string{".todo", ".mess"}},
		{"older layout", func(f *fixture, id string) {
			r, c, err := f.m.Q.OpenMessage(id)
			if err != nil {
				t.Fatal(err)
			}
			msg, _ := io.ReadAll(r)
			c.Close()
			os.WriteFile(f.m.Q.Path(queue.DirMess, id), msg, 0o640)
			os.WriteFile(f.m.Q.Path(queue.DirTodo, id), []byte("garbage\x00"), 0o640)
		}, []string{".todo", ".mess"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, map[string]string{})
			id := f.enqueue("a@b", "c@test.example")
			tc.damage(f, id)
			f.flush()
			for _, suffix := range tc.want {
				if _, err := os.Stat(f.m.Q.Path(queue.DirCorrupt, id+suffix)); err != nil {
					t.Errorf("corrupt/%s: %v", id+suffix, err)
				}
			}
			if f.count("c@test.example") != 0 {
				t.Errorf("a damaged message was delivered")
			}
			if !strings.Contains(f.log.String(), "set aside in corrupt/") {
				t.Errorf("log:\n%s", f.log.String())
			}
		})
	}
}

// message returns a queued message's bytes.
func (f *fixture) message(id string) string {
	f.t.Helper()
	r, c, err := f.m.Q.OpenMessage(id)
	if err != nil {
		f.t.Fatal(err)
	}
	defer c.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		f.t.Fatal(err)
	}
	return string(b)
}

func TestForwardQueuesACopy(t *testing.T) {
	f := newFixture(t, map[string]string{})
	f.m.T.Local = func(ctx context.Context, msgPath, sender, rcpt string) outcome.Result {
		f.bump(rcpt)
		if rcpt == "list@test.example" {
			return outcome.Result{Status: outcome.OK, Forward: []string{"a@test.example", "b@test.example"}}
		}
		return outcome.Result{Status: outcome.OK}
	}
	f.enqueue("s@x.example", "list@test.example")
	f.flush()
	msgs := f.messages()
	if len(msgs) != 1 {
		t.Fatalf("want the forwarded copy, have %v", msgs)
	}
	for _, st := range msgs {
		if st.Sender != "s@x.example" || len(st.Rcpts) != 2 {
			t.Errorf("forward envelope %+v", st)
		}
	}
	f.flush()
	if f.count("a@test.example") != 1 || f.count("b@test.example") != 1 {
		t.Errorf("calls %v", f.calls)
	}
}

func TestOCMPRouteAndMissingTransport(t *testing.T) {
	f := newFixture(t, map[string]string{"ocmproutes": "kiosk.example:kiosk1"})
	var got []string
	f.m.T.OCMP = func(ctx context.Context, endpoint, id, msgPath, sender string, rcpts []string) outcome.Result {
		got = append(got, endpoint+":"+strings.Join(rcpts, ","))
		return outcome.Result{Status: outcome.OK, Text: "in the outbox for OCMP endpoint " + endpoint}
	}
	f.enqueue("s@test.example", "a@kiosk.example", "b@kiosk.example", "c@internet.example")
	f.flush()
	if len(got) != 1 || got[0] != "kiosk1:a@kiosk.example,b@kiosk.example" {
		t.Errorf("ocmp calls %q", got)
	}
	if !strings.Contains(f.log.String(), "success: in the outbox for OCMP endpoint kiosk1") {
		t.Errorf("log:\n%s", f.log.String())
	}
	// No remote transport: the SMTP recipient stays, deferred, not bounced.
	for _, st := range f.messages() {
		if len(st.Rcpts) != 3 || st.Rcpts[2].Status != queue.Todo || !strings.Contains(st.Rcpts[2].LastError, "not available") {
			t.Errorf("state %+v", st)
		}
	}
}

func TestBadPerUserEndpointBounces(t *testing.T) {
	f := newFixture(t, map[string]string{"ocmproutes": "kiosk.example:%u"})
	f.m.T.OCMP = func(ctx context.Context, endpoint, id, msgPath, sender string, rcpts []string) outcome.Result {
		t.Errorf("outbox Put for %q", endpoint)
		return outcome.Result{Status: outcome.OK}
	}
	f.m.T.Local = func(ctx context.Context, msgPath, sender, rcpt string) outcome.Result {
		return outcome.Result{Status: outcome.OK}
	}
	f.enqueue("s@test.example", ".hidden@kiosk.example")
	f.flush()
	if !strings.Contains(f.log.String(), "failure: 5.1.3") {
		t.Errorf("log:\n%s", f.log.String())
	}
	msgs := f.messages()
	if len(msgs) != 1 {
		t.Fatalf("want the bounce, have %v", msgs)
	}
	for _, st := range msgs {
		if st.Sender != "" || st.Rcpts[0].Addr != "s@test.example" {
			t.Errorf("bounce %+v", st)
		}
	}
}

func TestDaemonPicksUpNewMailAndStops(t *testing.T) {
	f := newFixture(t, map[string]string{})
	delivered := make(chan string, 10)
	f.m.T.Local = func(ctx context.Context, msgPath, sender, rcpt string) outcome.Result {
		delivered <- rcpt
		return outcome.Result{Status: outcome.OK}
	}
	newMail := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.m.Run(ctx, Signals{New: newMail}) }()
	f.enqueue("s@x", "first@test.example")
	newMail <- struct{}{}
	if r := <-delivered; r != "first@test.example" {
		t.Errorf("delivered %q", r)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestBackoff(t *testing.T) {
	want := []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute}
	for i, w := range want {
		if got := Backoff(i + 1); got != w {
			t.Errorf("Backoff(%d) = %v, want %v", i+1, got, w)
		}
	}
	if Backoff(100) != 4*time.Hour {
		t.Errorf("Backoff(100) = %v", Backoff(100))
	}
}

// The back-off counts from the failure, not from the start of an attempt
// whose delivery took longer than the back-off (an SMTP server that
// answers slowly, timeoutremote 1200 s): that would make it due again at
// once.
func TestBackoffCountsFromTheFailure(t *testing.T) {
	f := newFixture(t, map[string]string{"smtproutes": ":relay.example"})
	f.m.T.Remote = func(ctx context.Context, dest route.Dest, msgPath, sender string, rcpts []string) []outcome.Result {
		f.advance(10 * time.Minute) // the session took ten minutes to fail
		return []outcome.Result{{Status: outcome.Temp, Text: "4.4.2 timeout"}}
	}
	id := f.enqueue("s@test.example", "x@far.example")
	next, _, err := f.m.attempt(context.Background(), id, false)
	if err != nil {
		t.Fatal(err)
	}
	failed := f.now.Unix()
	if want := failed + int64(Backoff(1)/time.Second); next != want {
		t.Errorf("deferred at %d, next try %d, want %d (a minute after the failure)", failed, next, want)
	}
	if st := f.messages()[id]; st == nil || st.Rcpts[0].NextTry != next {
		t.Errorf("state: %+v, want the next try at %d", st, next)
	}
}

// A SIGALRM that comes while a message's attempt is under way, after it
// kept the SMTP recipients for a flush (holdremote), sends them once the
// attempt is done: the signal is not lost on the message in flight.
func TestAlarmDuringAnAttemptFlushesAfterIt(t *testing.T) {
	f := newFixture(t, map[string]string{"holdremote": "1", "smtproutes": ":relay.example"})
	inLocal, finishLocal := make(chan struct{}), make(chan struct{})
	f.m.T.Local = func(ctx context.Context, msgPath, sender, rcpt string) outcome.Result {
		if f.count(rcpt) == 0 {
			inLocal <- struct{}{}
			<-finishLocal
		}
		f.bump(rcpt)
		return outcome.Result{Status: outcome.OK}
	}
	remote := make(chan string, 1)
	f.m.T.Remote = func(ctx context.Context, dest route.Dest, msgPath, sender string, rcpts []string) []outcome.Result {
		remote <- rcpts[0]
		return []outcome.Result{{Status: outcome.OK}}
	}
	f.enqueue("a@test.example", "local@test.example", "x@far.example")
	alarm := make(chan struct{}) // unbuffered: sent once Run has taken it
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.m.Run(ctx, Signals{Alarm: alarm}) }()
	<-inLocal // the first attempt is delivering the local recipient
	alarm <- struct{}{}
	close(finishLocal)
	if r, ok := receive(t, remote, "the SIGALRM during the attempt was lost: the held SMTP recipient was never sent"); ok && r != "x@far.example" {
		t.Errorf("remote delivery to %q", r)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// holdremote turned off and SIGHUP (docs: holdremote is reread) lets the
// SMTP mail it kept go, without a SIGALRM or a flush: a message waiting in
// the schedule, and one whose attempt was under way at the SIGHUP.
func TestReloadWithoutHoldRemoteSendsKeptMail(t *testing.T) {
	f := newFixture(t, map[string]string{"holdremote": "1", "concurrencylocal": "1", "smtproutes": ":relay.example"})
	inLocal, finishLocal := make(chan struct{}), make(chan struct{})
	f.m.T.Local = func(ctx context.Context, msgPath, sender, rcpt string) outcome.Result {
		inLocal <- struct{}{}
		<-finishLocal
		return outcome.Result{Status: outcome.OK}
	}
	sent := make(chan string, 2)
	f.m.T.Remote = func(ctx context.Context, dest route.Dest, msgPath, sender string, rcpts []string) []outcome.Result {
		sent <- rcpts[0]
		return []outcome.Result{{Status: outcome.OK}}
	}
	waiting := f.enqueue("a@test.example", "x@far.example")
	f.enqueue("a@test.example", "local@test.example", "y@far.example")
	reload := make(chan struct{}) // unbuffered: sent once Run has taken it
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.m.Run(ctx, Signals{Reload: reload}) }()
	// One slot: the second message starts once the first one's attempt,
	// which kept x@far.example, is done and back in the schedule.
	<-inLocal
	if !strings.Contains(f.log.String(), "new msg "+waiting) {
		t.Fatalf("the messages were not taken in order; log:\n%s", f.log.String())
	}
	if err := os.WriteFile(filepath.Join(f.m.Ctl.Path, "holdremote"), []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	reload <- struct{}{}
	close(finishLocal)
	got := map[string]bool{}
	for len(got) < 2 {
		r, ok := receive(t, sent, "holdremote 0 and SIGHUP: the kept SMTP mail is not all sent")
		if !ok {
			break
		}
		got[r] = true
	}
	if !got["x@far.example"] || !got["y@far.example"] {
		t.Errorf("sent %v; log:\n%s", got, f.log.String())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// SIGHUP rereads the manager's control files and then the transports';
// what cannot be read keeps its old value, and the log says which.
func TestReloadRereadsTransports(t *testing.T) {
	f := newFixture(t, map[string]string{})
	var calls int
	var fail error
	f.m.T.Reload = func() error { calls++; return fail }
	f.m.reload()
	fail = errors.New("dkimkeys: no such key file")
	f.m.reload()
	if calls != 2 {
		t.Fatalf("transports reloaded %d times, want 2", calls)
	}
	log := f.log.String()
	if !strings.Contains(log, "control files reread\n") || !strings.Contains(log, "warning: control files reread but the SMTP client's") || !strings.Contains(log, "no such key file") {
		t.Fatalf("log:\n%s", log)
	}
	os.WriteFile(filepath.Join(f.m.Ctl.Path, "queuelifetime"), []byte("many\n"), 0o644)
	f.m.reload()
	if calls != 2 || !strings.Contains(f.log.String(), "warning: control files not reread") {
		t.Fatalf("a bad control file: transports reloaded %d times; log:\n%s", calls, f.log.String())
	}
}

// SIGTERM (ctx cancelled) finishes the deliveries in progress: the
// transport's context is not cancelled (an SMTP session cut off after its
// DATA, or a -remote child killed, is a deferral that sends the message
// again), its outcome is recorded, and the attempt stops before its next
// destination, which waits for the next start.
func TestStopFinishesDeliveriesInProgress(t *testing.T) {
	f := newFixture(t, map[string]string{})
	in, release := make(chan struct{}, 2), make(chan struct{})
	var calls []string
	var cancelled []bool
	f.m.T.Remote = func(ctx context.Context, dest route.Dest, msgPath, sender string, rcpts []string) []outcome.Result {
		calls = append(calls, rcpts[0])
		in <- struct{}{}
		<-release
		cancelled = append(cancelled, ctx.Err() != nil)
		return []outcome.Result{{Status: outcome.OK}}
	}
	newMail := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.m.Run(ctx, Signals{New: newMail}) }()
	id := f.enqueue("s@x", "a@one.example", "b@two.example")
	newMail <- struct{}{}
	<-in
	cancel()
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(calls) != 1 || cancelled[0] {
		t.Errorf("deliveries %q, their contexts cancelled: %v", calls, cancelled)
	}
	st := f.messages()[id]
	if st == nil || st.Rcpts[0].Status != queue.Done || st.Rcpts[1].Status != queue.Todo || st.Rcpts[1].Attempts != 0 {
		t.Fatalf("state %+v", st)
	}
	if !strings.Contains(f.log.String(), "stopping: the rest waits") {
		t.Errorf("log:\n%s", f.log.String())
	}
}

// -flush stopped (SIGTERM) starts no new attempt and says it stopped.
func TestFlushStopped(t *testing.T) {
	f := newFixture(t, map[string]string{})
	f.localAnswers(outcome.Result{Status: outcome.OK})
	f.enqueue("s@x", "a@test.example")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := f.m.Flush(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Flush: %v", err)
	}
	if n := f.count("a@test.example"); n != 0 {
		t.Errorf("%d deliveries after the stop", n)
	}
}

// The first stop lets a delivery in progress go on (its context is not
// ended, its stop is); the hard stop (a second signal) ends it, and the
// delivery is a deferral.
func TestHardStopCutsDeliveries(t *testing.T) {
	f := newFixture(t, map[string]string{})
	in, sawStop := make(chan struct{}), make(chan bool)
	f.m.T.Remote = func(ctx context.Context, dest route.Dest, msgPath, sender string, rcpts []string) []outcome.Result {
		in <- struct{}{}
		stop := remote.StopOf(ctx)
		if stop == nil {
			sawStop <- false
			return []outcome.Result{{Status: outcome.OK}}
		}
		<-stop.Done()
		sawStop <- ctx.Err() == nil
		<-ctx.Done()
		return []outcome.Result{{Status: outcome.Temp, Text: "4.4.2 cut off"}}
	}
	hard, hardNow := context.WithCancel(context.Background())
	f.m.Hard = hard
	newMail := make(chan struct{}, 1)
	ctx, stopNow := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.m.Run(ctx, Signals{New: newMail}) }()
	id := f.enqueue("s@x", "a@one.example")
	newMail <- struct{}{}
	<-in
	stopNow()
	if alive := <-sawStop; !alive {
		t.Fatal("the first stop ended the delivery in progress (or it had no stop)")
	}
	hardNow()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st := f.messages()[id]
	if st == nil || st.Rcpts[0].Status != queue.Todo || st.Rcpts[0].Attempts != 1 || !strings.Contains(st.Rcpts[0].LastError, "cut off") {
		t.Fatalf("state %+v", st)
	}
}

// A -flush waiting for a message the daemon holds stops waiting at the
// first signal, and starts nothing: the daemon finishes that message.
func TestFlushStopsWaitingForALock(t *testing.T) {
	f := newFixture(t, map[string]string{})
	f.localAnswers(outcome.Result{Status: outcome.OK})
	f.m.T.LocalPart = nil
	id := f.enqueue("s@x", "a@test.example")
	lock, _, err := f.m.claimMessage(id, nil) // the daemon's attempt
	if err != nil {
		t.Fatal(err)
	}
	waiting := make(chan struct{}, 1)
	lockWaiting = func() { waiting <- struct{}{} }
	t.Cleanup(func() { lockWaiting = nil })
	ctx, stopNow := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.m.Flush(ctx) }()
	<-waiting
	stopNow()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Flush: %v", err)
	}
	lock.Close()
	if n := f.count("a@test.example"); n != 0 {
		t.Errorf("%d deliveries after the stop", n)
	}
}

// SIGHUP rereads concurrencylocal (docs/omail-deliver.md): a raised limit
// lets more deliveries run at once, without waiting for those running.
func TestReloadRaisesConcurrencyLocal(t *testing.T) {
	f := newFixture(t, map[string]string{"concurrencylocal": "1"})
	started := make(chan string, 3)
	release := make(chan struct{})
	f.m.T.Local = func(ctx context.Context, msgPath, sender, rcpt string) outcome.Result {
		started <- rcpt
		<-release
		return outcome.Result{Status: outcome.OK}
	}
	for _, u := range []string{"a", "b", "c"} {
		f.enqueue("s@x", u+"@test.example")
	}
	reload := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.m.Run(ctx, Signals{Reload: reload}) }()
	<-started // one slot: one delivery, which waits
	if err := os.WriteFile(filepath.Join(f.m.Ctl.Path, "concurrencylocal"), []byte("3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	reload <- struct{}{}
	for running := 1; running < 3; running++ {
		if _, ok := receive(t, started, fmt.Sprintf("after SIGHUP with concurrencylocal 3: %d deliveries at once, want 3", running)); !ok {
			break
		}
	}
	close(release)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A clock set back (an NTP or RTC step) never adds the step to the wait:
// a recipient whose next try is further ahead than the longest back-off
// is due now. One within it keeps its back-off.
func TestClockSetBackDoesNotStretchTheBackoff(t *testing.T) {
	f := newFixture(t, map[string]string{})
	f.localAnswers(outcome.Result{Status: outcome.Temp, Text: "4.2.2 busy"})
	id := f.enqueue("s@x", "u@test.example")
	f.flush()                  // deferred: next try a minute later
	f.advance(-48 * time.Hour) // the clock is set back two days
	next, _, err := f.m.attempt(context.Background(), id, false)
	if err != nil {
		t.Fatal(err)
	}
	if f.count("u@test.example") != 2 {
		t.Fatalf("not retried after the clock went back 48h: tries %d", f.count("u@test.example"))
	}
	if want := f.now.Add(Backoff(2)).Unix(); next != want {
		t.Errorf("next try %d, want %d (the second back-off)", next, want)
	}
	f.advance(Backoff(2) - time.Second)
	if _, _, err := f.m.attempt(context.Background(), id, false); err != nil {
		t.Fatal(err)
	}
	if f.count("u@test.example") != 2 {
		t.Errorf("retried before its back-off: tries %d", f.count("u@test.example"))
	}
}

// A message queued "in the future" (by a clock set back since) has waited
// nothing yet: with queuelifetime 0 its first deferral is final, as for
// any message.
func TestQueuedInTheFutureCountsAsNowForExpiry(t *testing.T) {
	f := newFixture(t, map[string]string{"queuelifetime": "0"})
	f.m.T.Local = func(ctx context.Context, msgPath, sender, rcpt string) outcome.Result {
		if rcpt == "u@test.example" {
			return outcome.Result{Status: outcome.Temp, Text: "4.2.2 busy"}
		}
		return outcome.Result{Status: outcome.OK}
	}
	id := f.enqueue("s@x", "u@test.example")
	f.advance(-time.Hour)
	if _, _, err := f.m.attempt(context.Background(), id, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(f.log.String(), "delivery msg "+id+" to <u@test.example>: failure: message expired after 0s") {
		t.Errorf("not expired:\n%s", f.log.String())
	}
}

// A message queued while the clock ran 30 days ahead (a kiosk's RTC),
// the clock then set right: the first attempt after the step makes its
// queued time now and saves it with the state, so that queuelifetime (a
// day) counts from there, not from 30 days ahead; the bounce's
// Arrival-Date is that time too.
func TestQueuedInTheFutureExpiresALifetimeAfterTheStep(t *testing.T) {
	f := newFixture(t, map[string]string{"queuelifetime": "86400"})
	f.localAnswers(outcome.Result{Status: outcome.Temp, Text: "4.2.2 busy"})
	id := f.enqueue("s@test.example", "u@test.example")
	f.advance(-30 * 24 * time.Hour)
	first := f.now
	for open := true; open; f.advance(MaxBackoff) {
		if f.now.Sub(first) > 6*24*time.Hour {
			t.Fatalf("queuelifetime a day: still queued 6 days after the clock went back, tries %d", f.count("u@test.example"))
		}
		var err error
		if _, open, err = f.m.attempt(context.Background(), id, false); err != nil {
			t.Fatal(err)
		}
		if st := f.messages()[id]; open && (st == nil || st.Queued != first.Unix()) {
			t.Fatalf("after the try at %s: state %+v, want queued %d (the first try after the step)", f.now.Sub(first), st, first.Unix())
		}
	}
	// A try every 4 hours: the one 24 hours after the first is final.
	if n := f.count("u@test.example"); n != 7 {
		t.Errorf("expired after %d tries, want 7 (24h after the first)", n)
	}
	f.bounceSays("Arrival-Date: " + first.Format(time.RFC1123Z))
}

// bounceSays checks that the queue holds one message, a bounce, and that
// it contains want.
func (f *fixture) bounceSays(want string) {
	f.t.Helper()
	msgs := f.messages()
	if len(msgs) != 1 {
		f.t.Fatalf("want exactly the bounce in the queue, have %d", len(msgs))
	}
	for id, st := range msgs {
		if body := f.message(id); st.Sender != "" || !strings.Contains(body, want) {
			f.t.Errorf("bounce from <%s> lacks %q:\n%s", st.Sender, want, body)
		}
	}
}

// The daemon's schedule too: when the clock goes back, a message due
// further ahead than the longest back-off is tried at once.
func TestDaemonRetriesAtOnceAfterTheClockGoesBack(t *testing.T) {
	f := newFixture(t, map[string]string{"concurrencylocal": "1"})
	inLocal, finishLocal := make(chan struct{}), make(chan struct{})
	tries := make(chan string, 4)
	f.m.T.Local = func(ctx context.Context, msgPath, sender, rcpt string) outcome.Result {
		if rcpt == "busy@test.example" {
			tries <- rcpt
			return outcome.Result{Status: outcome.Temp, Text: "4.2.2 busy"}
		}
		inLocal <- struct{}{}
		<-finishLocal
		return outcome.Result{Status: outcome.OK}
	}
	deferred := f.enqueue("s@x", "busy@test.example")
	f.enqueue("s@x", "slow@test.example")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.m.Run(ctx, Signals{}) }()
	<-tries
	// One slot: the second message starts once the first one, deferred
	// for a minute, is back in the schedule.
	<-inLocal
	if !strings.Contains(f.log.String(), "delivery msg "+deferred+" to <busy@test.example>: deferral") {
		t.Fatalf("the messages were not taken in order; log:\n%s", f.log.String())
	}
	f.advance(-48 * time.Hour)
	close(finishLocal)
	receive(t, tries, "the clock went back 48h: the deferred message waits the back-off and the step")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
