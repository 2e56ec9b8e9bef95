package qmanager

import (
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

	"omail/lib/outbox"
	"omail/lib/outcome"
	"omail/lib/queue"
	"omail/lib/remote"
	"omail/lib/route"
)

// A held message is never delivered, bounced or expired, by a flush or
// past queuelifetime; released, it is delivered.
func TestHeldMessageWaitsForRelease(t *testing.T) {
	f := newFixture(t, map[string]string{"queuelifetime": "3600"})
	f.deliverLocally()
	id := f.enqueue("s@test.example", "u@test.example")
	if err := f.m.Hold(id); err != nil {
		t.Fatal(err)
	}
	f.flush()
	f.advance(2 * time.Hour)
	f.flush()
	st := f.messages()[id]
	if f.count("u@test.example") != 0 || st == nil || st.Rcpts[0].Status != queue.Todo {
		t.Fatalf("held message touched: calls %v, state %+v", f.calls, st)
	}
	if !strings.Contains(f.log.String(), "msg "+id+" is held") {
		t.Errorf("log:\n%s", f.log.String())
	}
	if err := f.m.Release(id); err != nil {
		t.Fatal(err)
	}
	f.flush()
	if f.count("u@test.example") != 1 || len(f.messages()) != 0 {
		t.Errorf("after release: calls %v, queue %v", f.calls, f.messages())
	}
	if ids, _ := f.m.Q.HeldIDs(); len(ids) != 0 {
		t.Errorf("hold notes left: %v", ids)
	}
	if ids, _ := f.m.Q.Wakes(); len(ids) != 0 {
		t.Errorf("wake notes left: %v", ids)
	}
}

// Delete removes a message, fresh (a single-file todo/ entry) or
// deferred (in info/), without a bounce; an unknown id is ErrUnknown.
func TestDeleteRemovesWithoutBounce(t *testing.T) {
	f := newFixture(t, map[string]string{})
	f.m.T.Local = func(ctx context.Context, msgPath, sender, rcpt string) outcome.Result {
		return outcome.Result{Status: outcome.Temp, Text: "4.2.2 busy"}
	}
	fresh := f.enqueue("s@test.example", "a@test.example")
	old := f.enqueue("s@test.example", "b@test.example")
	if _, _, err := f.m.attempt(context.Background(), old, false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(f.m.Q.Path(queue.DirInfo, old)); err != nil {
		t.Fatalf("deferred message not in info/: %v", err)
	}
	f.m.Hold(old)
	for _, id := range []string{fresh, old} {
		if err := f.m.Delete(id); err != nil {
			t.Fatalf("delete %s: %v", id, err)
		}
	}
	if n := len(f.messages()); n != 0 {
		t.Errorf("%d message(s) left, and no bounce may be queued", n)
	}
	for _, d := range []string{queue.DirTodo, queue.DirInfo, queue.DirMess, queue.DirHold} {
		if names, _ := f.m.Q.Names(d); len(names) != 0 {
			t.Errorf("%s/ holds %v", d, names)
		}
	}
	if err := f.m.Delete(fresh); !errors.Is(err, ErrUnknown) {
		t.Errorf("second delete: %v, want ErrUnknown", err)
	}
	for _, op := range []func(string) error{f.m.Hold, f.m.Release, f.m.Retry} {
		if err := op("1.2.3.4"); !errors.Is(err, ErrUnknown) {
			t.Errorf("unknown id: %v", err)
		}
	}
	if strings.Count(f.log.String(), "deleted by the administrator") != 2 {
		t.Errorf("log:\n%s", f.log.String())
	}
}

// The daemon notices -retry and -release at once, through the trigger
// and the wake notes, without its clock moving: a deferred message is
// delivered before its next try, a held one only once released.
func TestDaemonActsOnRetryHoldAndRelease(t *testing.T) {
	f := newFixture(t, map[string]string{})
	delivered := make(chan string, 10)
	tries := make(chan string, 10)
	fail := true
	f.m.T.Local = func(ctx context.Context, msgPath, sender, rcpt string) outcome.Result {
		f.mu.Lock()
		failing := fail
		f.mu.Unlock()
		tries <- rcpt
		if failing {
			return outcome.Result{Status: outcome.Temp, Text: "4.2.2 busy"}
		}
		delivered <- rcpt
		return outcome.Result{Status: outcome.OK}
	}
	newMail := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.m.Run(ctx, Signals{New: newMail}) }()
	id := f.enqueue("s@x", "u@test.example")
	poke(newMail)
	<-tries // deferred: next try in a minute, and the clock stands still
	f.mu.Lock()
	fail = false
	f.mu.Unlock()

	// Hold, then ask for a retry: the attempt runs and delivers nothing.
	if err := f.m.Hold(id); err != nil {
		t.Fatal(err)
	}
	if err := f.m.Retry(id); err != nil {
		t.Fatal(err)
	}
	poke(newMail)
	f.waitLog(t, "msg "+id+" is held: not delivered")
	select {
	case r := <-delivered:
		t.Fatalf("held message delivered to %s", r)
	default:
	}
	if err := f.m.Release(id); err != nil {
		t.Fatal(err)
	}
	poke(newMail)
	if r := <-delivered; r != "u@test.example" {
		t.Errorf("delivered %q", r)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// waitLog waits until the daemon has logged text, woken by each line it
// writes; the test's own deadline is the only limit.
func (f *fixture) waitLog(t *testing.T, text string) {
	t.Helper()
	for {
		f.mu.Lock()
		ok := strings.Contains(f.log.String(), text)
		f.mu.Unlock()
		if ok {
			return
		}
		<-f.wrote
	}
}

// Old deferred mail to dead destinations runs in the slow lane: it
// takes at most its own slots, marked for the remote Limiter, and fresh
// mail is delivered while every slow slot is taken.
func TestSlowLaneLeavesRoomForFreshMail(t *testing.T) {
	f := newFixture(t, map[string]string{"concurrencylocal": "2", "slowattempts": "3", "smtproutes": "dead.example:[127.0.0.1]:1\nlive.example:[127.0.0.1]:2"})
	stuck := make(chan string, 20)
	delivered := make(chan string, 20)
	release := make(chan struct{})
	f.m.T.Remote = func(ctx context.Context, dest route.Dest, msgPath, sender string, rcpts []string) []outcome.Result {
		if strings.HasSuffix(rcpts[0], "@dead.example") {
			if !remote.InSlowLane(ctx) {
				t.Errorf("old mail to %s not in the slow lane", rcpts[0])
			}
			stuck <- rcpts[0]
			<-release // a server that accepts and never answers
			return []outcome.Result{{Status: outcome.Temp, Text: "timeout"}}
		}
		if remote.InSlowLane(ctx) {
			t.Errorf("fresh mail to %s in the slow lane", rcpts[0])
		}
		delivered <- rcpts[0]
		return []outcome.Result{{Status: outcome.OK}}
	}
	// Twenty messages deferred three times, due now.
	for i := 0; i < 20; i++ {
		id := fmt.Sprintf("1700000000.%09d.1.%d", i, i)
		st := &queue.State{ID: id, Queued: f.now.Unix() - 3600, Sender: "s@x.example",
			Rcpts: []queue.Rcpt{{Addr: fmt.Sprintf("d%d@dead.example", i), Status: queue.Todo, Attempts: 3, NextTry: f.now.Unix(), LastError: "timeout"}}}
		os.WriteFile(f.m.Q.Path(queue.DirMess, id), []byte("Subject: old\n\nbody\n"), 0o640)
		os.WriteFile(f.m.Q.Path(queue.DirInfo, id), st.Marshal(), 0o640)
	}
	newMail := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.m.Run(ctx, Signals{New: newMail}) }()
	<-stuck
	<-stuck // both slow slots are taken
	f.enqueue("s@x.example", "fresh@live.example")
	newMail <- struct{}{}
	if r := <-delivered; r != "fresh@live.example" {
		t.Errorf("delivered %q", r)
	}
	if n := len(stuck); n != 0 {
		t.Errorf("%d more old message(s) started beside a full slow lane", n)
	}
	cancel()
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// The outbox sweep bounces and removes entries older than
// outboxlifetime, leaves younger and held ones, and warns about a
// missing upload directory once a day.
func TestOutboxExpiryAndMissingUploadWarning(t *testing.T) {
	f := newFixture(t, map[string]string{"outboxlifetime": "86400", "ocmpdir": "/nonexistent/ocmp"})
	home := filepath.Dir(f.m.Q.Dir)
	msg := filepath.Join(t.TempDir(), "msg")
	os.WriteFile(msg, []byte("Subject: for the kiosk\n\nbody\n"), 0o644)
	for _, n := range []string{"1700000000.000000001.1.1", "1700000000.000000002.1.1", "1700000000.000000003.1.1"} {
		if err := outbox.Put(home, "k1", n, msg, "sender@test.example", []string{"u@kiosk.example"}); err != nil {
			t.Fatal(err)
		}
	}
	old, young := f.now.Add(-48*time.Hour), f.now.Add(-time.Hour)
	dir := outbox.Path(home, "k1")
	os.Chtimes(filepath.Join(dir, "1700000000.000000002.1.1"), young, young)
	os.Chtimes(filepath.Join(dir, "1700000000.000000001.1.1"), old, old)
	os.Chtimes(filepath.Join(dir, "1700000000.000000003.1.1"), old, old)
	if err := outbox.Hold(home, "k1", "1700000000.000000003.1.1"); err != nil {
		t.Fatal(err)
	}
	f.m.sweepOutbox()
	names, _ := outbox.List(home, "k1")
	held, _ := outbox.ListHeld(home, "k1")
	if len(names) != 1 || names[0] != "1700000000.000000002.1.1" || len(held) != 1 {
		t.Errorf("outbox after the sweep: %v, held %v", names, held)
	}
	var bounces []*queue.State
	for _, st := range f.messages() {
		bounces = append(bounces, st)
	}
	if len(bounces) != 1 || bounces[0].Sender != "" || bounces[0].Rcpts[0].Addr != "sender@test.example" {
		t.Fatalf("bounces: %+v", bounces)
	}
	r, c, err := f.m.Q.OpenMessage(bounces[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, r.Size())
	r.ReadAt(b, 0)
	c.Close()
	for _, want := range []string{"Status: 4.4.7", "Final-Recipient: rfc822; u@kiosk.example", "Subject: for the kiosk", "OCMP outbox for endpoint k1"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("bounce lacks %q:\n%s", want, b)
		}
	}
	if n := strings.Count(f.log.String(), "upload directory /nonexistent/ocmp/k1/mail/upload does not exist"); n != 1 {
		t.Errorf("%d warning(s):\n%s", n, f.log.String())
	}
	f.advance(time.Hour)
	f.m.sweepOutbox()
	f.advance(24 * time.Hour)
	f.m.sweepOutbox()
	if n := strings.Count(f.log.String(), "does not exist"); n != 2 {
		t.Errorf("%d warning(s) over a day, want 2:\n%s", n, f.log.String())
	}
}

// An outbox entry written while the clock ran 30 days ahead, the clock
// then set right: the first sweep after the step gives it the time now,
// so that outboxlifetime (a day) counts from there, and the bounce's
// Arrival-Date says so. An endpoint with an interrupted pass pending is
// left alone: its entries' change times are how omail-pack knows what it
// packed.
func TestOutboxEntryFromTheFutureWaitsFromTheFirstSweep(t *testing.T) {
	f := newFixture(t, map[string]string{"outboxlifetime": "86400"})
	home := filepath.Dir(f.m.Q.Dir)
	msg := filepath.Join(t.TempDir(), "msg")
	os.WriteFile(msg, []byte("Subject: for the kiosk\n\nbody\n"), 0o644)
	n := "1700000000.000000001.1.1"
	ahead := f.now.Add(30 * 24 * time.Hour)
	for _, ep := range []string{"k1", "k2"} {
		if err := outbox.Put(home, ep, n, msg, "sender@test.example", []string{"u@kiosk.example"}); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(filepath.Join(outbox.Path(home, ep), n), ahead, ahead)
	}
	os.WriteFile(filepath.Join(outbox.Path(home, "k2"), outbox.JournalName), nil, 0o600)
	mtime := func(ep string) time.Time {
		fi, err := os.Stat(filepath.Join(outbox.Path(home, ep), n))
		if err != nil {
			t.Fatal(err)
		}
		return fi.ModTime()
	}
	settled := f.now
	f.m.sweepOutbox()
	if got := mtime("k1"); !got.Equal(settled) {
		t.Errorf("k1's entry after the first sweep: time %s, want now (%s)", got, settled)
	}
	if got := mtime("k2"); !got.Equal(ahead) {
		t.Errorf("k2's entry, a pass pending, was changed: time %s, want %s", got, ahead)
	}
	if !strings.Contains(f.log.String(), "outbox k1: 1 message(s) dated in the future") {
		t.Errorf("log:\n%s", f.log.String())
	}
	f.advance(24 * time.Hour)
	f.m.sweepOutbox()
	if names, _ := outbox.List(home, "k1"); len(names) != 1 {
		t.Fatalf("bounced after waiting exactly outboxlifetime: %v", names)
	}
	f.advance(time.Second)
	f.m.sweepOutbox()
	if names, _ := outbox.List(home, "k1"); len(names) != 0 {
		t.Fatalf("outboxlifetime 1 day: still waiting a day and a second after the first sweep: %v", names)
	}
	f.bounceSays("Arrival-Date: " + settled.Format(time.RFC1123Z))
}

// holdDuringFirst is a fixture whose SMTP deliveries succeed, where the
// administrator holds message id during the first one (Hold runs in a
// goroutine: it waits for the attempt). hold gets Hold's answer.
func holdDuringFirst(t *testing.T, routes string) (f *fixture, id *string, hold chan error) {
	f = newFixture(t, map[string]string{"smtproutes": routes})
	noted := make(chan struct{})
	f.m.Q.Crash = func(point string) {
		if point == "admin-hold-noted" {
			close(noted)
		}
	}
	id, hold = new(string), make(chan error, 1)
	first := true
	f.m.T.Remote = func(ctx context.Context, dest route.Dest, msgPath, sender string, rcpts []string) []outcome.Result {
		if first {
			first = false
			go func() { hold <- f.m.Hold(*id) }()
			<-noted
		}
		for _, r := range rcpts {
			f.bump(r)
		}
		return []outcome.Result{{Status: outcome.OK}}
	}
	return f, id, hold
}

// A hold written while an attempt delivers stops that attempt before its
// next destination, and Hold returns once the attempt has stopped, the
// message held; the release delivers the rest.
func TestHoldDuringAttempt(t *testing.T) {
	f, id, hold := holdDuringFirst(t, "a.example:r1.example\nb.example:r2.example\nc.example:r3.example")
	*id = f.enqueue("s@test.example", "x@a.example", "y@b.example", "z@c.example")
	next, open, err := f.m.attempt(context.Background(), *id, false)
	if err != nil || !open || next != Never {
		t.Fatalf("attempt: next %d, open %v, %v; want the message open at never", next, open, err)
	}
	if err := <-hold; err != nil {
		t.Fatalf("Hold: %v", err)
	}
	if n := f.count("x@a.example") + f.count("y@b.example") + f.count("z@c.example"); n != 1 {
		t.Fatalf("%d destinations delivered, want the one in flight only; log:\n%s", n, f.log.String())
	}
	if !f.m.Q.Held(*id) || !f.m.Queued(*id) {
		t.Fatal("the message is not queued and held")
	}
	if err := f.m.Release(*id); err != nil {
		t.Fatal(err)
	}
	if _, open, err := f.m.attempt(context.Background(), *id, false); err != nil || open {
		t.Fatalf("after the release: open %v, %v", open, err)
	}
	for _, r := range []string{"x@a.example", "y@b.example", "z@c.example"} {
		if n := f.count(r); n != 1 {
			t.Errorf("%s delivered %d times", r, n)
		}
	}
}

// A hold that the delivery in progress outruns (its last destination)
// says so: ErrFinished, and no note is left behind.
func TestHoldAfterLastDestination(t *testing.T) {
	f, id, hold := holdDuringFirst(t, "a.example:r1.example")
	*id = f.enqueue("s@test.example", "x@a.example")
	if _, open, err := f.m.attempt(context.Background(), *id, false); err != nil || open {
		t.Fatalf("attempt: open %v, %v", open, err)
	}
	if err := <-hold; !errors.Is(err, ErrFinished) {
		t.Fatalf("Hold: %v, want ErrFinished", err)
	}
	if f.m.Q.Held(*id) {
		t.Error("a hold note is left for a finished message")
	}
}

// A release that lands while an attempt finds the message still held
// (between its reading the notes and its end) is not lost: the wake
// note it writes stays, and the daemon delivers the message.
func TestReleaseDuringHeldAttempt(t *testing.T) {
	f := newFixture(t, map[string]string{})
	delivered := make(chan string, 10)
	f.m.T.Local = func(ctx context.Context, msgPath, sender, rcpt string) outcome.Result {
		delivered <- rcpt
		return outcome.Result{Status: outcome.OK}
	}
	newMail := make(chan struct{}, 1)
	admin := &Manager{Q: f.m.Q, Log: io.Discard}
	id := f.enqueue("s@x", "u@test.example")
	if err := admin.Hold(id); err != nil {
		t.Fatal(err)
	}
	if err := admin.Retry(id); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	f.onLog = func(line string) {
		if strings.Contains(line, "msg "+id+" is held: not delivered") {
			once.Do(func() {
				if err := admin.Release(id); err != nil {
					t.Error(err)
				}
				poke(newMail)
			})
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.m.Run(ctx, Signals{New: newMail}) }()
	poke(newMail)
	if r, ok := receive(t, delivered, "the released message was not delivered"); !ok {
		t.Logf("held %v, woken %v", admin.Q.Held(id), admin.Q.Woken(id))
	} else if r != "u@test.example" {
		t.Errorf("delivered %q", r)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A delivery that does not stop within HoldWait (an SMTP destination
// taking its time, or a program of the delivery that runs -hold on its
// own message) does not keep -hold waiting: the message is held, and
// the line says the delivery in progress stops after its destination.
func TestHoldDoesNotWaitForever(t *testing.T) {
	f := newFixture(t, map[string]string{})
	id := f.enqueue("s@x", "u@test.example")
	lock, err := f.m.lockAny(id) // as an attempt in progress holds it
	if err != nil || lock == nil {
		t.Fatalf("lock: %v", err)
	}
	defer lock.Close()
	defer func(d time.Duration) { HoldWait = d }(HoldWait)
	HoldWait = 0
	if err := f.m.Hold(id); err != nil {
		t.Fatal(err)
	}
	if !f.m.Q.Held(id) {
		t.Error("not held")
	}
	f.waitLog(t, "msg "+id+" held; the delivery in progress stops after its current destination")
}

// poke tells a running manager there is new mail, as the trigger fifo
// does: a poke already pending is as good as a second one.
func poke(newMail chan struct{}) {
	select {
	case newMail <- struct{}{}:
	default:
	}
}

// The sweep may wait for the outbox's lock through a whole omail-pack
// pass, while the daemon goes on making entries: settling reads the
// clock once it holds the lock, so an entry made during the wait is not
// taken for one dated in the future and moved back.
func TestSettleReadsTheClockUnderTheLock(t *testing.T) {
	f := newFixture(t, map[string]string{"outboxlifetime": "86400"})
	home := filepath.Dir(f.m.Q.Dir)
	msg := filepath.Join(t.TempDir(), "msg")
	os.WriteFile(msg, []byte("Subject: x\n\nbody\n"), 0o644)
	ahead, fresh := "1700000000.000000001.1.1", "1700000000.000000002.1.1"
	for _, id := range []string{ahead, fresh} {
		if err := outbox.Put(home, "k1", id, msg, "s@test.example", []string{"u@kiosk.example"}); err != nil {
			t.Fatal(err)
		}
	}
	start := f.now
	month := start.Add(30 * 24 * time.Hour)
	os.Chtimes(filepath.Join(outbox.Path(home, "k1"), ahead), month, month)
	// fresh was made during a 10-minute pass the sweep waited for: the
	// sweep's first reading of the clock is from before it, every later
	// one from after.
	made := start.Add(10 * time.Minute)
	os.Chtimes(filepath.Join(outbox.Path(home, "k1"), fresh), made, made)
	first := true
	f.m.Now = func() time.Time {
		if first {
			first = false
			return start
		}
		return made
	}
	f.m.sweepOutbox()
	fi, err := os.Stat(filepath.Join(outbox.Path(home, "k1"), fresh))
	if err != nil {
		t.Fatal(err)
	}
	if !fi.ModTime().Equal(made) {
		t.Errorf("an entry made while the sweep waited was moved from %v to %v", made, fi.ModTime())
	}
	if fi, _ := os.Stat(filepath.Join(outbox.Path(home, "k1"), ahead)); !fi.ModTime().Equal(made) {
		t.Errorf("the entry dated in the future has %v, want %v", fi.ModTime(), made)
	}
	if !strings.Contains(f.log.String(), "1 message(s) dated in the future") {
		t.Errorf("log:\n%s", f.log.String())
	}
}
