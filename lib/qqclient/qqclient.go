// Package qqclient runs a queue program (omail-queue, or any
// qmail-queue) by qmail-queue's protocol: the message is written to its
// fd 0 while it arrives, the envelope to its fd 1 at the end, and the
// program's exit code is the answer.
package qqclient

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"

	"omail/lib/envelope"
	"omail/lib/qexit"
)

// Client is one message on its way into the queue.
type Client struct {
	prog string
	cmd  *exec.Cmd
	msg  *os.File // write end of the message pipe
	env  *os.File // write end of the envelope pipe
	werr error    // first error writing the message
	done bool
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
	if _, err := c.msg.Write(b); err != nil {
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
	c.msg.Close()
	eerr := envelope.Write(c.env, e)
	c.env.Close()
	err := c.cmd.Wait()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
		if code < 0 {
			return qexit.Bug, fmt.Errorf("%s: %v", c.prog, err)
		}
	} else if err != nil {
		return qexit.Bug, fmt.Errorf("%s: %v", c.prog, err)
	}
	if code != 0 {
		return code, fmt.Errorf("%s: %s", c.prog, qexit.Describe(code))
	}
	if c.werr != nil || eerr != nil {
		// The program cannot have queued what it did not get whole; an
		// exit 0 here is a broken queue program. Never say accepted.
		return qexit.Bug, fmt.Errorf("%s exited 0 but writing to it failed: %v %v", c.prog, c.werr, eerr)
	}
	return 0, nil
}

// Abort ends the message without an envelope: the queue program sees
// the envelope cut short and queues nothing. It waits for the program.
func (c *Client) Abort() {
	if c.done {
		return
	}
	c.done = true
	c.msg.Close()
	c.env.Close()
	c.cmd.Wait()
}
