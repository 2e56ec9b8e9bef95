package resident

import (
	"bytes"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeListener hands out the conns sent on its channel and records
// every Accept call in the shared event list.
type fakeListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
	ev     *events
}

func newFake(ev *events) *fakeListener {
	return &fakeListener{conns: make(chan net.Conn), closed: make(chan struct{}), ev: ev}
}

func (l *fakeListener) Accept() (net.Conn, error) {
	l.ev.add("accept")
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}
func (l *fakeListener) Close() error   { l.once.Do(func() { close(l.closed) }); return nil }
func (l *fakeListener) Addr() net.Addr { return &net.TCPAddr{} }

// events is an ordered record, with a notification per event.
type events struct {
	mu   sync.Mutex
	list []string
	ch   chan string
	// passed counts the notifications wait took while waiting for
	// another one (two sessions that end at once end in either order):
	// a later wait for one of them finds it here. Only the test's
	// goroutine waits.
	passed map[string]int
}

func newEvents() *events { return &events{ch: make(chan string, 100), passed: map[string]int{}} }
func (e *events) add(s string) {
	e.mu.Lock()
	e.list = append(e.list, s)
	e.mu.Unlock()
	e.ch <- s
}
func (e *events) wait(t *testing.T, want string) {
	t.Helper()
	if e.passed[want] > 0 {
		e.passed[want]--
		return
	}
	for s := range e.ch {
		if s == want {
			return
		}
		e.passed[s]++
	}
}
func (e *events) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return strings.Join(e.list, " ")
}

// logWriter turns log lines into events.
type logWriter struct{ ev *events }

func (w logWriter) Write(b []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		w.ev.add("log " + l)
	}
	return len(b), nil
}

// session is a Serve that reads one line from the client and says
// which it got: "start NAME", then "end NAME ok" or "end NAME cut".
func session(ev *events) func(net.Conn, bool) {
	return func(c net.Conn, tls bool) {
		defer c.Close()
		var name [1]byte
		if _, err := io.ReadFull(c, name[:]); err != nil {
			ev.add("end ? cut")
			return
		}
		ev.add("start " + string(name[:]))
		var b [1]byte
		if _, err := c.Read(b[:]); err != nil {
			ev.add("end " + string(name[:]) + " cut")
			return
		}
		ev.add("end " + string(name[:]) + " ok")
	}
}

// client connects through l and names itself; the returned conn is
// the client's end.
func client(l *fakeListener, name string) net.Conn {
	a, b := net.Pipe()
	l.conns <- b
	go a.Write([]byte(name))
	return a
}

func index(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

func TestLimit(t *testing.T) {
	ev := newEvents()
	l1, l2 := newFake(ev), newFake(ev)
	stop := make(chan struct{})
	srv := &Server{Listeners: []Listener{{Listener: l1}, {Listener: l2}}, Max: 2, Serve: session(ev), Name: "t"}
	done := make(chan struct{})
	go func() { srv.Run(stop); close(done) }()

	a := client(l1, "a")
	ev.wait(t, "start a")
	b := client(l2, "b")
	ev.wait(t, "start b")
	// Both places taken: c can only be accepted once a has ended.
	cdone := make(chan net.Conn)
	go func() { cdone <- client(l1, "c") }()
	a.Write([]byte("x"))
	ev.wait(t, "end a ok")
	c := <-cdone
	ev.wait(t, "start c")
	b.Write([]byte("x"))
	c.Write([]byte("x"))
	ev.wait(t, "end b ok")
	ev.wait(t, "end c ok")
	close(stop)
	<-done

	ev.mu.Lock()
	list := append([]string(nil), ev.list...)
	ev.mu.Unlock()
	if index(list, "start c") < index(list, "end a ok") {
		t.Errorf("c started before a ended: %v", list)
	}
	for _, s := range list {
		if strings.HasPrefix(s, "log t: status: 3/") {
			t.Errorf("three sessions at once: %v", list)
		}
	}
}

// drainServer runs a Server whose grace period ends when the test sends
// on grace; done is closed when Run returns.
func drainServer(d time.Duration) (ev *events, l *fakeListener, stop chan struct{}, grace chan time.Time, done chan struct{}) {
	ev = newEvents()
	l = newFake(ev)
	stop, grace, done = make(chan struct{}), make(chan time.Time), make(chan struct{})
	srv := &Server{Listeners: []Listener{{Listener: l}}, Max: 5, Serve: session(ev), Name: "t",
		Log: logWriter{ev}, Grace: func() time.Duration { return d },
		After: func(time.Duration) <-chan time.Time { return grace }}
	go func() { srv.Run(stop); close(done) }()
	return
}

func TestDrainLetsSessionsFinish(t *testing.T) {
	ev, l, stop, _, done := drainServer(time.Hour)
	a := client(l, "a")
	ev.wait(t, "start a")
	close(stop)
	ev.wait(t, "log t: stopping: no new connections, 1 sessions to finish (at most 1h0m0s)")
	// Stopped accepting: the listener is closed.
	select {
	case <-l.closed:
	default:
		t.Error("listener still open after stop")
	}
	a.Write([]byte("x"))
	ev.wait(t, "end a ok")
	<-done
	if strings.Contains(ev.String(), "cut") {
		t.Errorf("a session was cut off: %s", ev)
	}
}

func TestDrainCutsAfterGrace(t *testing.T) {
	ev, l, stop, grace, done := drainServer(time.Minute)
	client(l, "a")
	ev.wait(t, "start a")
	close(stop)
	ev.wait(t, "log t: stopping: no new connections, 1 sessions to finish (at most 1m0s)")
	grace <- time.Now()
	ev.wait(t, "log t: stopping: closing 1 sessions still open after 1m0s")
	ev.wait(t, "end a cut")
	<-done
}

// A real socket: after the stop, nothing listens on the port any more.
func TestStopClosesSocket(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	var log bytes.Buffer
	stop := make(chan struct{})
	served := make(chan bool, 1)
	srv := &Server{Listeners: []Listener{{Listener: ln, TLS: true}}, Max: 1, Name: "t", Log: &log,
		Serve: func(c net.Conn, tls bool) { served <- tls; c.Close() }}
	done := make(chan struct{})
	go func() { srv.Run(stop); close(done) }()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if !<-served {
		t.Error("the listener's TLS mark was not passed on")
	}
	c.Close()
	close(stop)
	<-done
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Error("still accepting after the stop")
	}
}

// A session that is queueing a message when the grace period ends (not
// reading) still writes its reply, and is cut off at its next read:
// the client hears the 250 of a message that is queued, and does not
// send it again.
func TestDrainLetsTheLastReplyOut(t *testing.T) {
	ev := newEvents()
	l := newFake(ev)
	stop, grace, done := make(chan struct{}), make(chan time.Time, 1), make(chan struct{})
	queueing, queued := make(chan struct{}), make(chan struct{})
	srv := &Server{Listeners: []Listener{{Listener: l}}, Max: 2, Name: "t",
		Log: logWriter{ev}, Grace: func() time.Duration { return time.Minute },
		After: func(time.Duration) <-chan time.Time { return grace },
		Serve: func(c net.Conn, tls bool) {
			defer c.Close()
			var b [1]byte
			io.ReadFull(c, b[:])
			close(queueing)
			<-queued // the message goes to the queue: no read meanwhile
			c.SetReadDeadline(time.Now().Add(time.Hour))
			if _, err := c.Write([]byte("250")); err != nil {
				ev.add("reply lost: " + err.Error())
				return
			}
			// The next command is never read: the session ends.
			if _, err := c.Read(b[:]); err != nil {
				ev.add("end cut")
				return
			}
			ev.add("end read")
		}}
	go func() { srv.Run(stop); close(done) }()
	a := client(l, "a")
	<-queueing
	close(stop)
	ev.wait(t, "log t: stopping: no new connections, 1 sessions to finish (at most 1m0s)")
	grace <- time.Now()
	ev.wait(t, "log t: stopping: closing 1 sessions still open after 1m0s")
	close(queued)
	got := make([]byte, 3)
	if _, err := io.ReadFull(a, got); err != nil || string(got) != "250" {
		t.Fatalf("the client heard %q, %v; want the 250", got, err)
	}
	ev.wait(t, "end cut")
	<-done
}

// Once drained, each write deadline a session sets gets up to
// DrainWrite from then, not from the drain: a reply written when the
// queue took the message, long after the grace period ended, still goes
// out.
func TestDrainedWriteGetsItsOwnTime(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	clock := time.Now().Add(-2 * DrainWrite)
	c := &conn{Conn: b, now: func() time.Time { return clock }}
	c.drain() // long ago: the write deadline it set has passed
	clock = time.Now()
	if err := c.SetWriteDeadline(time.Now().Add(time.Hour)); err != nil { // as lib/smtpd before a reply
		t.Fatal(err)
	}
	got := make(chan string)
	go func() {
		b := make([]byte, 3)
		io.ReadFull(a, b)
		got <- string(b)
	}()
	if _, err := c.Write([]byte("250")); err != nil {
		t.Fatalf("the reply after a drain: %v", err)
	}
	if s := <-got; s != "250" {
		t.Errorf("the client read %q", s)
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("a read after the drain")
	}
}
