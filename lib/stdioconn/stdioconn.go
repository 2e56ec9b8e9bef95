// Package stdioconn turns a program's standard input and output into a
// net.Conn, for servers run one connection per process the qmail way
// (tcpserver, inetd nowait, systemd Accept=yes): fd 0 is read, fd 1 is
// written, and read deadlines work so that idle clients time out.
package stdioconn

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// Conn is a net.Conn over a reader and a writer.
type Conn struct {
	r io.Reader
	w io.Writer
	// the files given to New, when r and w are duplicates of them
	origIn, origOut *os.File
	local           Addr
	remote          Addr

	closeOnce sync.Once
	closeErr  error
	closed    chan struct{}
}

// Addr is an address taken from the environment (TCPLOCALIP,
// TCPREMOTEIP); it is only ever printed.
type Addr string

// Network is "stdio".
func (Addr) Network() string  { return "stdio" }
func (a Addr) String() string { return string(a) }

// New makes a Conn from in and out. When both are *os.File their
// descriptors are duplicated, put in non-blocking mode and opened as new
// files, which Go's poller serves: that is what makes deadlines work on
// sockets and pipes. (A duplicate, because the original may already be
// registered with the poller, which takes a descriptor only once.) Other
// readers and writers (tests) get a Conn whose deadlines fail with
// os.ErrNoDeadline.
func New(in io.Reader, out io.Writer, local, remote string) *Conn {
	c := &Conn{r: in, w: out, local: Addr(local), remote: Addr(remote), closed: make(chan struct{})}
	inF, ok1 := in.(*os.File)
	outF, ok2 := out.(*os.File)
	if ok1 && ok2 {
		if r, err := pollable(inF); err == nil {
			c.r, c.origIn = r, inF
		}
		if w, err := pollable(outF); err == nil {
			c.w, c.origOut = w, outF
		}
	}
	return c
}

// pollable returns a non-blocking duplicate of f. A descriptor that
// cannot be polled (a regular file) still works, without deadlines.
func pollable(f *os.File) (*os.File, error) {
	fd, err := syscall.Dup(int(f.Fd()))
	if err != nil {
		return nil, err
	}
	syscall.CloseOnExec(fd)
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}

// Read reads from the input. A passed deadline is an os.ErrDeadlineExceeded
// (a net.Error whose Timeout is true); reading after Close is net.ErrClosed.
func (c *Conn) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	return n, mapErr(err)
}

// Write writes to the output.
func (c *Conn) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	return n, mapErr(err)
}

func mapErr(err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	if errors.Is(err, os.ErrClosed) {
		return net.ErrClosed
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return err
	}
	return &net.OpError{Op: "io", Net: "stdio", Err: err}
}

// Close closes both sides, once. A file in non-blocking mode is put
// back in blocking mode first (Fd does that), as the open file may be
// shared with a parent, a terminal for example.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		for _, x := range []any{c.r, c.w, c.origIn, c.origOut} {
			if f, ok := x.(*os.File); ok && f == nil {
				continue
			}
			if f, ok := x.(*os.File); ok {
				f.Fd()
				if err := f.Close(); err != nil && c.closeErr == nil {
					c.closeErr = err
				}
			} else if cl, ok := x.(io.Closer); ok {
				if err := cl.Close(); err != nil && c.closeErr == nil {
					c.closeErr = err
				}
			}
		}
		close(c.closed)
	})
	return c.closeErr
}

// Done is closed when the Conn is.
func (c *Conn) Done() <-chan struct{} { return c.closed }

// LocalAddr is the address given to New.
func (c *Conn) LocalAddr() net.Addr { return c.local }

// RemoteAddr is the address given to New.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

type deadliner interface {
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// SetDeadline sets both deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// SetReadDeadline sets the input's deadline.
func (c *Conn) SetReadDeadline(t time.Time) error {
	if d, ok := c.r.(deadliner); ok {
		return d.SetReadDeadline(t)
	}
	return os.ErrNoDeadline
}

// SetWriteDeadline sets the output's deadline.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	if d, ok := c.w.(deadliner); ok {
		return d.SetWriteDeadline(t)
	}
	return os.ErrNoDeadline
}

// Listener hands out one Conn, once, for servers written against
// net.Listener. Its second Accept returns only after that Conn has been
// closed, so a server loop that exits when Accept fails does not cut the
// connection off.
type Listener struct {
	c        *Conn
	mu       sync.Mutex
	accepted bool
	closed   chan struct{}
	once     sync.Once
}

// NewListener returns a Listener for c.
func NewListener(c *Conn) *Listener { return &Listener{c: c, closed: make(chan struct{})} }

// Accept returns the Conn the first time (unless the Listener was closed
// before); after that it waits for the Conn to be closed and returns
// net.ErrClosed.
func (l *Listener) Accept() (net.Conn, error) {
	l.mu.Lock()
	first := !l.accepted
	l.accepted = true
	l.mu.Unlock()
	if first {
		select {
		case <-l.closed:
			return nil, net.ErrClosed
		default:
			return l.c, nil
		}
	}
	<-l.c.Done()
	return nil, net.ErrClosed
}

// Close stops the Listener; it does not close an accepted Conn.
func (l *Listener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

// Addr is the Conn's local address.
func (l *Listener) Addr() net.Addr { return l.c.local }
