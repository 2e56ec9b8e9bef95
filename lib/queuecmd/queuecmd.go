// Package queuecmd is the body of omail-queue: qmail-queue's protocol.
// The message comes on fd 0, the envelope on fd 1; the message gets a
// Received: line and enters the queue at one commit point, and only then
// does the program exit 0.
package queuecmd

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"omail/lib/envelope"
	"omail/lib/home"
	"omail/lib/qexit"
	"omail/lib/queue"
)

// Timeout is how long a caller may take to hand over message and
// envelope, as qmail-queue's 24-hour alarm.
var Timeout = 24 * time.Hour

// Run queues one message. stdout is read, not written: the protocol puts
// the envelope on fd 1, so it must also be an io.Reader.
func Run(args []string, env home.Env, stdin io.Reader, stdout io.Writer, stderr io.Writer) int {
	envIn, ok := stdout.(io.Reader)
	if !ok {
		fmt.Fprintln(stderr, "omail-queue: fd 1 is not readable: the envelope comes on fd 1")
		return qexit.ReadError
	}
	code, err := queueOne(env, stdin, envIn)
	if err != nil {
		fmt.Fprintf(stderr, "omail-queue: exit %d: %v\n", code, err)
	}
	return code
}

// queueOne does the work in a goroutine, so that a caller who stalls
// can be timed out while a read is blocked.
func queueOne(env home.Env, msg, envIn io.Reader) (int, error) {
	h := env.Dir()
	if fi, err := os.Stat(h); err != nil || !fi.IsDir() {
		return qexit.HomeError, fmt.Errorf("OMAIL_HOME %s: %v", h, err)
	}
	q := queue.New(h)
	if err := q.Check(); err != nil {
		return qexit.QueueError, err
	}
	p, err := q.Begin()
	if err != nil {
		return qexit.Code(err, qexit.WriteError), fmt.Errorf("creating the message file: %w", err)
	}

	var mu sync.Mutex // orders the timeout's abort and the commit
	timedOut := false
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		code, err := fill(p, msg, envIn, func() bool { return timedOut }, &mu)
		done <- result{code, err}
	}()
	t := time.NewTimer(Timeout)
	defer t.Stop()
	select {
	case r := <-done:
		if r.code == qexit.OK {
			q.Notify()
		}
		return r.code, r.err
	case <-t.C:
		mu.Lock()
		timedOut = true
		p.Abort()
		mu.Unlock()
		return qexit.Timeout, fmt.Errorf("no message and envelope within %v", Timeout)
	}
}

// fill copies the message in behind its Received: line, reads the
// envelope, and commits. Nothing is visible in the queue before Commit.
func fill(p *queue.Pending, msg, envIn io.Reader, timedOut func() bool, mu *sync.Mutex) (int, error) {
	defer func() {
		mu.Lock()
		p.Abort()
		mu.Unlock()
	}()
	bw := bufio.NewWriterSize(p, 64*1024)
	fmt.Fprintf(bw, "Received: (omail-queue %d invoked by uid %d); %s\n",
		os.Getpid(), os.Getuid(), time.Now().Format("Mon, 02 Jan 2006 15:04:05 -0700"))
	src := &errReader{r: msg}
	if _, err := io.Copy(bw, src); err != nil {
		if src.err != nil {
			return qexit.ReadError, fmt.Errorf("reading the message: %w", err)
		}
		return qexit.Code(err, qexit.WriteError), err
	}
	if err := bw.Flush(); err != nil {
		return qexit.Code(err, qexit.WriteError), err
	}
	e, err := envelope.Read(envIn)
	if err != nil {
		if errors.Is(err, envelope.ErrFormat) {
			if errors.Is(err, envelope.ErrTooLong) {
				return qexit.AddressTooLong, err
			}
			return qexit.EnvelopeFormat, err
		}
		return qexit.ReadError, err
	}
	mu.Lock()
	defer mu.Unlock()
	if timedOut() {
		return qexit.Timeout, errors.New("timed out")
	}
	if _, err := p.Commit(e); err != nil {
		return qexit.Code(err, qexit.WriteError), fmt.Errorf("committing: %w", err)
	}
	return qexit.OK, nil
}

// errReader remembers a read error, to tell it from a write error after
// io.Copy.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(b []byte) (int, error) {
	n, err := e.r.Read(b)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}
