// Package queuecmd is the body of omail-queue: qmail-queue's protocol.
// The message comes on fd 0, the envelope on fd 1; the message gets a
// Received: line and enters the queue at one commit point, and only then
// does the program exit 0. The work itself is lib/queue's Submission;
// this package adds the pipes and qmail-queue's time limit.
package queuecmd

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"omail/lib/crashpoint"
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
	m, code, err := queue.Submit(env.Dir(), crashpoint.New(env))
	if err != nil {
		return code, err
	}
	var mu sync.Mutex // orders the timeout's abort and the commit
	timedOut := false
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		code, err := fill(m, msg, envIn, func() bool { return timedOut }, &mu)
		done <- result{code, err}
	}()
	t := time.NewTimer(Timeout)
	defer t.Stop()
	select {
	case r := <-done:
		return r.code, r.err
	case <-t.C:
		mu.Lock()
		timedOut = true
		m.Abort()
		mu.Unlock()
		return qexit.Timeout, fmt.Errorf("no message and envelope within %v", Timeout)
	}
}

// fill copies the message in, reads the envelope, and commits.
func fill(m *queue.Submission, msg, envIn io.Reader, timedOut func() bool, mu *sync.Mutex) (int, error) {
	defer func() {
		mu.Lock()
		m.Abort()
		mu.Unlock()
	}()
	src := &errReader{r: msg}
	if _, err := io.Copy(m, src); err != nil {
		if src.err != nil {
			return qexit.ReadError, fmt.Errorf("reading the message: %w", err)
		}
		return qexit.Code(err, qexit.WriteError), err
	}
	e, code, err := queue.ReadEnvelope(envIn)
	if err != nil {
		return code, err
	}
	mu.Lock()
	defer mu.Unlock()
	if timedOut() {
		return qexit.Timeout, errors.New("timed out")
	}
	return m.Commit(e)
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
