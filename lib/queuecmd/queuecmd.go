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
	m, code, err := Begin(env)
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
func fill(m *Message, msg, envIn io.Reader, timedOut func() bool, mu *sync.Mutex) (int, error) {
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
	e, code, err := ReadEnvelope(envIn)
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

// ReadEnvelope reads and checks an envelope in qmail-queue's format,
// with omail-queue's exit code for what is wrong with it.
func ReadEnvelope(r io.Reader) (*envelope.Envelope, int, error) {
	e, err := envelope.Read(r)
	switch {
	case err == nil:
		return e, qexit.OK, nil
	case errors.Is(err, envelope.ErrTooLong):
		return nil, qexit.AddressTooLong, err
	case errors.Is(err, envelope.ErrFormat):
		return nil, qexit.EnvelopeFormat, err
	}
	return nil, qexit.ReadError, err
}

// Message is omail-queue's work without its pipes: one message on its
// way into the queue. omail-queue runs it between fd 0 and fd 1;
// qqclient runs it in the caller's process when exec-ing omail-queue
// would change nothing but the cost of a program start.
type Message struct {
	q  *queue.Queue
	p  *queue.Pending
	bw *bufio.Writer
}

// Begin checks OMAIL_HOME and the queue, creates the message file and
// writes omail-queue's Received: line. On failure it returns the exit
// code omail-queue would give.
func Begin(env home.Env) (*Message, int, error) {
	h := env.Dir()
	if fi, err := os.Stat(h); err != nil || !fi.IsDir() {
		return nil, qexit.HomeError, fmt.Errorf("OMAIL_HOME %s: %v", h, err)
	}
	q := queue.New(h)
	if err := q.Check(); err != nil {
		return nil, qexit.QueueError, err
	}
	p, err := q.Begin()
	if err != nil {
		return nil, qexit.Code(err, qexit.WriteError), fmt.Errorf("creating the message file: %w", err)
	}
	m := &Message{q: q, p: p, bw: bufio.NewWriterSize(p, 64*1024)}
	fmt.Fprintf(m.bw, "Received: (omail-queue %d invoked by uid %d); %s\n",
		os.Getpid(), os.Getuid(), time.Now().Format("Mon, 02 Jan 2006 15:04:05 -0700"))
	return m, qexit.OK, nil
}

// Write appends message bytes; an error is the queue's (disk full...).
func (m *Message) Write(b []byte) (int, error) { return m.bw.Write(b) }

// Commit makes the message part of the queue with envelope e, at the
// queue's commit point, and wakes omail-deliver. It returns omail-queue's
// exit code: 0 only when the message is durably queued.
func (m *Message) Commit(e *envelope.Envelope) (int, error) {
	if err := m.bw.Flush(); err != nil {
		return qexit.Code(err, qexit.WriteError), err
	}
	if _, err := m.p.Commit(e); err != nil {
		return qexit.Code(err, qexit.WriteError), fmt.Errorf("committing: %w", err)
	}
	m.q.Notify()
	return qexit.OK, nil
}

// Abort throws the message away; after Commit it does nothing.
func (m *Message) Abort() { m.p.Abort() }

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
