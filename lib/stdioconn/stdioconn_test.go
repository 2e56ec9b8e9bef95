package stdioconn

import (
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

func pipes(t *testing.T) (c *Conn, clientW, clientR *os.File) {
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c = New(inR, outW, "local", "remote")
	t.Cleanup(func() { c.Close(); inW.Close(); outR.Close() })
	return c, inW, outR
}

func TestReadWrite(t *testing.T) {
	c, w, r := pipes(t)
	w.WriteString("hello")
	b := make([]byte, 10)
	n, err := c.Read(b)
	if err != nil || string(b[:n]) != "hello" {
		t.Fatalf("Read = %q, %v", b[:n], err)
	}
	if _, err := c.Write([]byte("world")); err != nil {
		t.Fatal(err)
	}
	n, _ = r.Read(b)
	if string(b[:n]) != "world" {
		t.Fatalf("peer read %q", b[:n])
	}
	if c.RemoteAddr().String() != "remote" || c.LocalAddr().Network() != "stdio" {
		t.Errorf("addresses %v %v", c.LocalAddr(), c.RemoteAddr())
	}
	w.Close()
	if _, err := c.Read(b); err != io.EOF {
		t.Errorf("after the peer closed: %v, want EOF", err)
	}
}

func TestReadDeadline(t *testing.T) {
	c, _, _ := pipes(t)
	if err := c.SetReadDeadline(time.Now().Add(10 * time.Millisecond)); err != nil {
		t.Fatalf("pipes must take deadlines: %v", err)
	}
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Read after the deadline: %v, want a net.Error timeout", err)
	}
}

func TestClosed(t *testing.T) {
	c, _, _ := pipes(t)
	c.Close()
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read after Close: %v, want net.ErrClosed", err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after Close: %v, want net.ErrClosed", err)
	}
	select {
	case <-c.Done():
	default:
		t.Error("Done not closed")
	}
}

func TestNotFiles(t *testing.T) {
	var out strings.Builder
	c := New(strings.NewReader("in"), &out, "", "")
	if err := c.SetReadDeadline(time.Now()); !errors.Is(err, os.ErrNoDeadline) {
		t.Errorf("deadline on a strings.Reader: %v", err)
	}
	b, _ := io.ReadAll(c)
	c.Write([]byte("out"))
	if string(b) != "in" || out.String() != "out" {
		t.Errorf("%q %q", b, out.String())
	}
}

func TestListener(t *testing.T) {
	c, _, _ := pipes(t)
	l := NewListener(c)
	got, err := l.Accept()
	if err != nil || got != c {
		t.Fatalf("first Accept: %v %v", got, err)
	}
	done := make(chan error)
	go func() {
		_, err := l.Accept()
		done <- err
	}()
	l.Close() // does not release the second Accept: the Conn is still open
	select {
	case err := <-done:
		t.Fatalf("second Accept returned before the Conn closed: %v", err)
	default:
	}
	c.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Accept: %v", err)
	}
	l2 := NewListener(c)
	l2.Close()
	if _, err := l2.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept on a closed Listener: %v", err)
	}
}
