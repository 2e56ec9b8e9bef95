package smtpd

import (
	"io"
	"net"
	"testing"
	"time"
)

// deadlineConn records the write deadlines set on it.
type deadlineConn struct {
	net.Conn
	set []time.Time
}

func (c *deadlineConn) SetWriteDeadline(t time.Time) error {
	c.set = append(c.set, t)
	return c.Conn.SetWriteDeadline(t)
}

// Every flush of replies sets the write deadline, none (the zero time)
// when timeoutsmtpd is 0: a connection that bounds writes by itself
// (lib/resident's, drained at a stop) bounds this reply from now, not
// from whenever it was drained.
func TestFlushSetsWriteDeadline(t *testing.T) {
	for _, timeout := range []time.Duration{0, time.Minute} {
		a, b := net.Pipe()
		c := &deadlineConn{Conn: b}
		s := &session{cfg: &Config{Timeout: timeout}}
		s.setConn(c)
		go io.Copy(io.Discard, a)
		s.w.WriteString("250 ok\r\n")
		if err := s.flush(); err != nil {
			t.Fatal(err)
		}
		if len(c.set) != 1 || c.set[0].IsZero() != (timeout == 0) {
			t.Errorf("timeout %v: write deadlines set %v", timeout, c.set)
		}
		a.Close()
		b.Close()
	}
}
