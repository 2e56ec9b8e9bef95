// Package qqclient runs a queue program (omail-queue, or any
// qmail-queue) by qmail-queue's protocol: the message is written to its
// fd 0 while it arrives, the envelope to its fd 1 at the end, and the
// program's exit code is the answer. When the program would be our own
// omail-queue running with our own ids, Open does the same work in this
// process instead (see Open).
package qqclient

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"

	"golang.org/x/sys/unix"

	"omail/lib/crashpoint"
	"omail/lib/envelope"
	"omail/lib/home"
	"omail/lib/qexit"
	"omail/lib/queue"
)

// Client is one message on its way into the queue.
type Client struct {
	prog string
	cmd  *exec.Cmd
	msg  *os.File // write end of the message pipe
	env  *os.File // write end of the envelope pipe
	werr error    // first error writing the message
	done bool

	inproc *queue.Submission // set when queueing in this process
	stderr io.Writer         // for its log lines
}

// Open starts a message into the queue program of env
// (env.QueueProgram()). When that program is our own omail-queue,
// chosen by no OMAILQUEUE or QMAILQUEUE, and running it would change
// nothing (it is a plain executable, not set-uid or set-gid, and we
// are not set-id either), Open runs omail-queue's code in this process:
// the same checks, Received: line, commit point and exit codes, at the
// cost of no program start. With a set-id omail-queue (the installed,
// privilege-separated setup) the program is always run.
func Open(env home.Env, stderr io.Writer) (*Client, error) {
	prog := env.QueueProgram()
	if !sameProcessOK(env, prog) {
		return Start(prog, env, stderr)
	}
	m, code, err := queue.Submit(env.Dir(), crashpoint.New(env))
	if err != nil {
		// Reported by Commit, as omail-queue's exit code would be.
		return &Client{prog: prog, werr: &qexit.Error{Code: code, Err: err}, stderr: stderr}, nil
	}
	return &Client{prog: prog, inproc: m, stderr: stderr}, nil
}

// sameProcessOK reports whether exec-ing prog would run our own
// omail-queue with our own uid and gid.
func sameProcessOK(env home.Env, prog string) bool {
	if home.Setid() || env.Trusted("OMAILQUEUE") != "" || env.Trusted("QMAILQUEUE") != "" {
		return false
	}
	fi, err := os.Stat(prog)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode()&(os.ModeSetuid|os.ModeSetgid) != 0 {
		return false
	}
	// Not runnable by us: let the exec fail as it would have.
	return unix.Access(prog, unix.X_OK) == nil
}

// Start runs prog with environment env; its stderr is ours.
func Start(prog string, env []string, stderr io.Writer) (*Client, error) {
	msgR, msgW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	envR, envW, err := os.Pipe()
	if err != nil {
		msgR.Close()
		msgW.Close()
		return nil, err
	}
	cmd := exec.Command(prog)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = msgR, envR, stderr
	cmd.Env = env
	if err := cmd.Start(); err != nil {
		msgR.Close()
		msgW.Close()
		envR.Close()
		envW.Close()
		return nil, fmt.Errorf("cannot run %s: %v", prog, err)
	}
	msgR.Close()
	envR.Close()
	return &Client{prog: prog, cmd: cmd, msg: msgW, env: envW}, nil
}

// Write sends message bytes. After the first failure (the queue program
// died: disk full, say) it discards, so that the caller can go on
// reading its input to the end; Commit reports the failure.
func (c *Client) Write(b []byte) (int, error) {
	if c.werr != nil {
		return len(b), nil
	}
	var err error
	if c.inproc != nil {
		_, err = c.inproc.Write(b)
	} else {
		_, err = c.msg.Write(b)
	}
	if err != nil {
		c.werr = err
	}
	return len(b), nil
}

// Commit ends the message, sends the envelope and waits for the queue
// program. It returns the program's exit code (qexit codes; 0 only when
// the message is queued) and an error describing any failure.
func (c *Client) Commit(e *envelope.Envelope) (int, error) {
	if c.done {
		return qexit.Bug, errors.New("message already ended")
	}
	c.done = true
	if c.cmd == nil {
		return c.commitHere(e)
	}
	c.msg.Close()
	eerr := envelope.Write(c.env, e)
	c.env.Close()
	err := c.cmd.Wait()
	code := qexit.OK
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
		if code < 0 {
			return qexit.Bug, fmt.Errorf("%s: %v", c.prog, err)
		}
	} else if err != nil {
		return qexit.Bug, fmt.Errorf("%s: %v", c.prog, err)
	}
	if code != qexit.OK {
		return code, fmt.Errorf("%s: %s", c.prog, qexit.Describe(code))
	}
	if c.werr != nil || eerr != nil {
		// The program cannot have queued what it did not get whole; an
		// exit 0 here is a broken queue program. Never say accepted.
		return qexit.Bug, fmt.Errorf("%s exited 0 but writing to it failed: %v %v", c.prog, c.werr, eerr)
	}
	return qexit.OK, nil
}

// Abort ends the message without an envelope: the queue program sees
// the envelope cut short and queues nothing. It waits for the program.
func (c *Client) Abort() {
	if c.done {
		return
	}
	c.done = true
	if c.inproc != nil {
		c.inproc.Abort()
		return
	}
	if c.cmd == nil {
		return
	}
	c.msg.Close()
	c.env.Close()
	c.cmd.Wait()
}

// commitHere is Commit for a message queued in this process. The
// envelope goes through its wire format and omail-queue's reader, so
// that it is checked exactly as the program would check it.
func (c *Client) commitHere(e *envelope.Envelope) (int, error) {
	// A failure while the message was begun or written comes first.
	code, err := qexit.Code(c.werr, qexit.WriteError), c.werr
	if err == nil {
		var wire bytes.Buffer
		if err = envelope.Write(&wire, e); err != nil {
			code = qexit.Bug
		} else if e, code, err = queue.ReadEnvelope(&wire); err == nil {
			code, err = c.inproc.Commit(e)
		}
	}
	if c.inproc != nil {
		c.inproc.Abort()
	}
	if err != nil {
		// omail-queue's own log line, then the caller's error.
		fmt.Fprintf(c.stderr, "omail-queue: exit %d: %v\n", code, err)
		return code, fmt.Errorf("omail-queue: %s", qexit.Describe(code))
	}
	return qexit.OK, nil
}
