package queue

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"omail/lib/crashpoint"
	"omail/lib/envelope"
	"omail/lib/qexit"
)

// Submission is omail-queue's work without its pipes: one message on its
// way into the queue, with omail-queue's checks, Received: line, commit
// point and exit codes. omail-queue (lib/queuecmd) runs it between fd 0
// and fd 1; lib/qqclient runs it in the caller's process when exec-ing
// omail-queue would change nothing but the cost of a program start.
type Submission struct {
	q  *Queue
	p  *Pending
	bw *bufio.Writer
}

// Submit checks OMAIL_HOME (home) and its queue, creates the message file
// and writes omail-queue's Received: line. On failure it returns the exit
// code omail-queue would give. crash is the program's test hooks (nil in
// production), called at the commit's steps.
func Submit(home string, crash crashpoint.Hook) (*Submission, int, error) {
	if fi, err := os.Stat(home); err != nil || !fi.IsDir() {
		return nil, qexit.HomeError, fmt.Errorf("OMAIL_HOME %s: %v", home, err)
	}
	q := New(home)
	q.Crash = crash
	if err := q.Check(); err != nil {
		return nil, qexit.QueueError, err
	}
	p, err := q.Begin()
	if err != nil {
		// tmp/ full or unwritable: nothing was created; omail-queue exits 53 and the client is told 451.
		return nil, qexit.Code(err, qexit.WriteError), fmt.Errorf("creating the message file: %w", err)
	}
	s := &Submission{q: q, p: p, bw: bufio.NewWriterSize(p, 64*1024)}
	fmt.Fprintf(s.bw, "Received: (omail-queue %d invoked by uid %d); %s\n",
		os.Getpid(), os.Getuid(), time.Now().Format("Mon, 02 Jan 2006 15:04:05 -0700"))
	return s, qexit.OK, nil
}

// Write appends message bytes; an error is the queue's (disk full...).
func (s *Submission) Write(b []byte) (int, error) { return s.bw.Write(b) }

// Commit makes the message part of the queue with envelope e, at the
// queue's commit point, and wakes omail-deliver. It returns omail-queue's
// exit code: 0 only when the message is durably queued.
func (s *Submission) Commit(e *envelope.Envelope) (int, error) {
	// A failure leaves nothing behind, not even in tmp/: a full disk
	// wants its space back now, not when omail-deliver's cleanup runs.
	defer s.p.Abort()
	if err := s.bw.Flush(); err != nil {
		// Disk full while writing: the caller's Abort removes tmp/ID.mess; nothing acknowledged.
		return qexit.Code(err, qexit.WriteError), err
	}
	if _, err := s.p.Commit(e); err != nil {
		// Commit has undone its own steps (Abort): nothing queued, nothing acknowledged.
		return qexit.Code(err, qexit.WriteError), fmt.Errorf("committing: %w", err)
	}
	s.q.Notify()
	return qexit.OK, nil
}

// Abort throws the message away; after Commit it does nothing.
func (s *Submission) Abort() { s.p.Abort() }

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
