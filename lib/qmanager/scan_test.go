package qmanager

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"omail/lib/outcome"
	"omail/lib/queue"
)

// backlog writes deferred messages straight into info/ and mess/, one
// recipient each (b0@test.example, ...), in arrival order; next[i] is
// message i's next-try time.
func (f *fixture) backlog(next ...int64) []string {
	f.t.Helper()
	var ids []string
	for i, n := range next {
		id := fmt.Sprintf("1700000000.%09d.1.%d", i, i)
		st := &queue.State{ID: id, Queued: f.now.Unix() - 600, Sender: "s@x.example",
			Rcpts: []queue.Rcpt{{Addr: fmt.Sprintf("b%d@test.example", i), Status: queue.Todo, Attempts: 1, NextTry: n, LastError: "4.2.2 try later"}}}
		if err := os.WriteFile(f.m.Q.Path(queue.DirMess, id), []byte("Subject: old\n\nbody\n"), 0o640); err != nil {
			f.t.Fatal(err)
		}
		if err := os.WriteFile(f.m.Q.Path(queue.DirInfo, id), st.Marshal(), 0o640); err != nil {
			f.t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// deliverLocally makes every local delivery succeed, counted, and told
// on the channel it returns.
func (f *fixture) deliverLocally() <-chan string {
	delivered := make(chan string, 20)
	f.m.T.Local = func(ctx context.Context, msgPath, sender, rcpt string) outcome.Result {
		f.bump(rcpt)
		delivered <- rcpt
		return outcome.Result{Status: outcome.OK}
	}
	return delivered
}

// A big queue's start-up scan must not hold up new mail, nor the
// messages it has already found due. The scan is stopped in the middle
// by its hook; meanwhile the daemon delivers what the first batch found
// due and a newly queued message; a SIGALRM that comes during the scan
// makes the rest due too, and every message is delivered exactly once.
func TestNewMailIsDeliveredWhileTheStartUpScanRuns(t *testing.T) {
	f := newFixture(t, map[string]string{})
	delivered := f.deliverLocally()
	past, later := f.now.Unix()-1, f.now.Add(3*time.Hour).Unix() // within the longest back-off
	f.backlog(past, past, later, later, later, later)
	f.m.scanBatch = 2
	blocked, release := make(chan int), make(chan struct{})
	f.m.scanHook = func(read int) {
		if read == 4 { // after the first batch is handed over
			blocked <- read
			<-release
		}
	}
	newMail, alarm := make(chan struct{}, 1), make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.m.Run(ctx, Signals{New: newMail, Alarm: alarm}) }()

	if n := <-blocked; n != 4 {
		t.Fatalf("scan blocked after %d files, want 4", n)
	}
	got := map[string]bool{<-delivered: true, <-delivered: true}
	if !got["b0@test.example"] || !got["b1@test.example"] {
		t.Fatalf("first due messages: %v", got)
	}
	f.enqueue("s@x.example", "new@test.example")
	newMail <- struct{}{}
	if r := <-delivered; r != "new@test.example" {
		t.Fatalf("delivered %q while the scan is stopped, want the new mail", r)
	}

	alarm <- struct{}{} // taken by the daemon: the scan has not finished
	close(release)
	for i := 0; i < 4; i++ {
		got[<-delivered] = true
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 6; i++ {
		if r := fmt.Sprintf("b%d@test.example", i); f.count(r) != 1 {
			t.Errorf("%s delivered %d times", r, f.count(r))
		}
	}
	if f.count("new@test.example") != 1 || len(f.messages()) != 0 {
		t.Errorf("calls %v, queue %v", f.calls, f.messages())
	}
}

// Without a SIGALRM, what the scan finds deferred stays deferred, and
// the message that was due is delivered. SIGTERM during the scan stops
// the daemon cleanly, its scan included.
func TestStartUpScanKeepsDueTimesAndStops(t *testing.T) {
	f := newFixture(t, map[string]string{})
	delivered := f.deliverLocally()
	later := f.now.Add(time.Hour).Unix()
	f.backlog(later, f.now.Unix(), later, later)
	f.m.scanBatch = 1
	blocked, release := make(chan int), make(chan struct{})
	f.m.scanHook = func(read int) {
		if read == 3 {
			blocked <- read
			<-release
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.m.Run(ctx, Signals{}) }()
	<-blocked
	if r := <-delivered; r != "b1@test.example" {
		t.Errorf("delivered %q", r)
	}
	cancel()
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(delivered) != 0 || len(f.messages()) != 3 {
		t.Errorf("delivered %d more, %d left in the queue", len(delivered), len(f.messages()))
	}
}

// A daemon that cannot read info/ at start says so and exits with the
// error, as it did when the scan came before any delivery.
func TestStartUpScanErrorEndsTheDaemon(t *testing.T) {
	f := newFixture(t, map[string]string{})
	if err := os.Rename(f.m.Q.Path(queue.DirInfo, ""), f.m.Q.Path("info.away", "")); err != nil {
		t.Fatal(err)
	}
	if err := f.m.Run(context.Background(), Signals{}); err == nil {
		t.Error("Run without info/ returned nil")
	}
}

// The crash leftovers go once they are old: tmp/ files, message files
// without an envelope and the temporaries of state writes in info/; never a message with one, a young one, or one a
// deliverer holds.
func TestCleanupRemovesOldOrphansOnly(t *testing.T) {
	f := newFixture(t, map[string]string{})
	old := time.Now().Add(-OrphanAge - time.Hour)
	write := func(dir, name string, aged bool) string {
		p := f.m.Q.Path(dir, name)
		if err := os.WriteFile(p, []byte("x"), 0o640); err != nil {
			t.Fatal(err)
		}
		if aged {
			os.Chtimes(p, old, old)
		}
		return p
	}
	orphan := write(queue.DirMess, "1.1.1.1", true)
	young := write(queue.DirMess, "1.1.1.2", false)
	held := write(queue.DirMess, "1.1.1.3", true)
	tmpOld := write(queue.DirTmp, "1.1.1.4.mess", true)
	tmpYoung := write(queue.DirTmp, "1.1.1.5.mess", false)
	// A state write killed before its rename (safefile's temporary name),
	// old and young; and an old state, which is never an orphan.
	infoTmpOld := write(queue.DirInfo, ".1.1.1.6123456", true)
	infoTmpYoung := write(queue.DirInfo, ".1.1.1.7123456", false)
	infoOld := write(queue.DirInfo, "1.1.1.8", true)
	kept := f.backlog(f.now.Add(time.Hour).Unix())[0]
	os.Chtimes(f.m.Q.Path(queue.DirMess, kept), old, old)

	lock, err := os.Open(held)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	f.m.cleanup()
	for p, want := range map[string]bool{orphan: false, young: true, held: true, tmpOld: false, tmpYoung: true,
		infoTmpOld: false, infoTmpYoung: true, infoOld: true,
		f.m.Q.Path(queue.DirMess, kept): true} {
		if _, err := os.Stat(p); (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", filepath.Base(p), err == nil, want)
		}
	}
}

// A state read at start whose next try is further ahead than the longest
// back-off was written before the clock went back (an RTC or NTP step
// while the daemon was down): the message is due now, while one within
// the back-off keeps its time.
func TestStartUpScanTakesFarDueTimesAsNow(t *testing.T) {
	f := newFixture(t, map[string]string{})
	delivered := f.deliverLocally()
	f.backlog(f.now.Add(MaxBackoff-time.Minute).Unix(), f.now.Add(48*time.Hour).Unix())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.m.Run(ctx, Signals{}) }()
	if got, ok := receive(t, delivered, "a message due 48h ahead was not tried at start"); ok && got != "b1@test.example" {
		t.Errorf("delivered %s, want b1 (due 48h ahead)", got)
	}
	f.waitLog(t, "status: start-up scan done")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if f.count("b0@test.example") != 0 {
		t.Errorf("a message within its back-off was tried")
	}
}
