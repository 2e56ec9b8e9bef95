// Package resident is the accept loop of a server that serves every
// connection in one process, as tcpserver does with one process per
// connection: any number of listeners, at most Max sessions at once
// (at the limit it stops accepting, leaving new connections in the
// kernel's backlog, until a session ends), and a graceful stop: no new
// connections, sessions finish within a grace period, the ones still
// running after it are cut off at their next read (a reply being
// written still goes out).
package resident

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Listener is one socket to accept on.
type Listener struct {
	net.Listener
	// TLS marks an implicit-TLS listener (SMTPS); the server only
	// passes it on to Serve.
	TLS bool
}

// Server serves connections. Fill in the fields, then call Run once.
type Server struct {
	Listeners []Listener
	// Max is the number of sessions at once (tcpserver -c); at least 1.
	Max int
	// Serve runs one session on c and closes it. It runs in a
	// goroutine of its own.
	Serve func(c net.Conn, tls bool)
	// Name begins every log line ("omail-smtpd").
	Name string
	// Log gets one line per event: the session count as tcpserver -v
	// reports it, accept errors, the stop.
	Log io.Writer
	// Grace returns how long the sessions may take to finish once Run
	// is told to stop.
	Grace func() time.Duration
	// After is time.After; tests replace it.
	After func(time.Duration) <-chan time.Time

	logMu    sync.Mutex // one line at a time into Log, from any goroutine
	mu       sync.Mutex
	cond     *sync.Cond // signalled when a session ends or the server stops
	active   map[*conn]struct{}
	stopping bool

	acceptors sync.WaitGroup
	sessions  sync.WaitGroup
}

// Run accepts on every listener until stop is closed, then closes the
// listeners, waits for the sessions (at most Grace), closes those left
// and returns once every session goroutine has returned.
func (s *Server) Run(stop <-chan struct{}) {
	if s.Max < 1 {
		s.Max = 1
	}
	if s.After == nil {
		s.After = time.After
	}
	s.cond = sync.NewCond(&s.mu)
	s.active = map[*conn]struct{}{}
	for _, l := range s.Listeners {
		s.acceptors.Add(1)
		go s.accept(l)
	}
	<-stop

	s.mu.Lock()
	s.stopping = true
	s.cond.Broadcast()
	s.mu.Unlock()
	for _, l := range s.Listeners {
		l.Close()
	}
	s.acceptors.Wait()

	grace := time.Duration(0)
	if s.Grace != nil {
		grace = s.Grace()
	}
	s.mu.Lock()
	n := len(s.active)
	s.mu.Unlock()
	s.logf("stopping: no new connections, %d sessions to finish (at most %v)", n, grace)
	done := make(chan struct{})
	go func() { s.sessions.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-s.After(grace):
	}
	s.mu.Lock()
	s.logf("stopping: closing %d sessions still open after %v", len(s.active), grace)
	for c := range s.active {
		// A session reading fails and ends. One handing a message to
		// the queue finishes that and still writes its reply (the 250
		// of a message now queued, which the client must hear or it
		// sends the message again), then fails at its next read.
		c.drain()
	}
	s.mu.Unlock()
	<-done
}

// DrainWrite is how long a session may still write once the grace
// period is over: its last reply, to a client that reads.
const DrainWrite = 10 * time.Second

// conn is a session's connection, which the server can drain: reads
// fail at once and deadlines set after cannot undo that; each write
// deadline set after is at most DrainWrite away (a reply written when
// the queue has taken the message, however long that took).
type conn struct {
	net.Conn
	now      func() time.Time // time.Now; tests replace it
	mu       sync.Mutex
	draining bool
}

var errDrained = errors.New("resident: the server is stopping")

func (c *conn) drain() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.draining = true
	now := c.now()
	c.Conn.SetReadDeadline(now) // a read in progress returns
	c.Conn.SetWriteDeadline(now.Add(DrainWrite))
}

func (c *conn) isDraining() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.draining
}

func (c *conn) Read(b []byte) (int, error) {
	if c.isDraining() {
		return 0, errDrained
	}
	return c.Conn.Read(b)
}

func (c *conn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// SetReadDeadline sets the deadline unless the connection is draining.
func (c *conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.draining {
		return nil
	}
	return c.Conn.SetReadDeadline(t)
}

// SetWriteDeadline sets the deadline, at most DrainWrite from now once
// the connection is draining.
func (c *conn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if limit := c.now().Add(DrainWrite); c.draining && (t.IsZero() || t.After(limit)) {
		t = limit
	}
	return c.Conn.SetWriteDeadline(t)
}

// accept is one listener's loop.
func (s *Server) accept(l Listener) {
	defer s.acceptors.Done()
	var delay time.Duration
	for {
		if !s.waitBelowMax() {
			return
		}
		c, err := l.Accept()
		if err != nil {
			if s.isStopping() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors or memory, or a connection reset
			// before we took it: say so, back off a little, go on.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.logf("accept on %s: %v", l.Addr(), err)
			<-s.After(delay)
			continue
		}
		delay = 0
		sc := &conn{Conn: c, now: time.Now}
		if !s.start(sc) {
			c.Close()
			return
		}
		go s.serve(sc, l.TLS)
	}
}

// waitBelowMax blocks while Max sessions run, so that the next
// connection waits in the backlog rather than in our memory. It
// returns false once the server stops.
func (s *Server) waitBelowMax() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.active) >= s.Max && !s.stopping {
		s.cond.Wait()
	}
	return !s.stopping
}

// start counts c as a session. With several listeners, two may have
// accepted for the last free place: the second waits here for the next
// one, so that never more than Max sessions run.
func (s *Server) start(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.active) >= s.Max && !s.stopping {
		s.cond.Wait()
	}
	if s.stopping {
		return false
	}
	s.active[c] = struct{}{}
	s.sessions.Add(1)
	s.logf("status: %d/%d", len(s.active), s.Max)
	return true
}

func (s *Server) serve(c *conn, tls bool) {
	defer s.sessions.Done()
	defer func() {
		s.mu.Lock()
		delete(s.active, c)
		s.logf("status: %d/%d", len(s.active), s.Max)
		s.cond.Broadcast()
		s.mu.Unlock()
	}()
	s.Serve(c, tls)
}

func (s *Server) isStopping() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopping
}

// logf writes one line to Log. Run, the acceptors and the sessions all
// log, some under s.mu and some not, so the writes are serialized here:
// Log need not be safe for concurrent use (a test's bytes.Buffer).
func (s *Server) logf(format string, a ...any) {
	if s.Log == nil {
		return
	}
	line := fmt.Sprintf("%s: %s\n", s.Name, fmt.Sprintf(format, a...))
	s.logMu.Lock()
	defer s.logMu.Unlock()
	io.WriteString(s.Log, line)
}
