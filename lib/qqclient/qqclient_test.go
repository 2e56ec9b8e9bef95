package qqclient

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"omail/lib/envelope"
	"omail/lib/home"
	"omail/lib/internal/testfake"
	"omail/lib/qexit"
	"omail/lib/queue"
)

func TestCommit(t *testing.T) {
	q := testfake.NewQueue(t)
	c, err := Start(q.Prog, nil, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("Subject: x\n\nbody\n"))
	e := &envelope.Envelope{Sender: "a@b", Rcpts: []string{"c@d", "e@f"}}
	if code, err := c.Commit(e); code != 0 || err != nil {
		t.Fatalf("Commit = %d %v", code, err)
	}
	runs := q.Accepted()
	var want bytes.Buffer
	envelope.Write(&want, e)
	if len(runs) != 1 || string(runs[0].Message) != "Subject: x\n\nbody\n" || !bytes.Equal(runs[0].Envelope, want.Bytes()) {
		t.Errorf("queue got %+v", runs)
	}
}

func TestExitCodes(t *testing.T) {
	q := testfake.NewQueue(t)
	for _, code := range []int{53, 31, 81} {
		q.Fail(code)
		c, err := Start(q.Prog, nil, os.Stderr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("x\n"))
		if got, err := c.Commit(&envelope.Envelope{Sender: "", Rcpts: []string{"a@b"}}); got != code || err == nil {
			t.Errorf("exit %d: Commit = %d %v", code, got, err)
		}
	}
}

func TestAbortSendsNoEnvelope(t *testing.T) {
	q := testfake.NewQueue(t)
	c, err := Start(q.Prog, nil, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("x\n"))
	c.Abort()
	runs := q.Runs()
	if len(runs) != 1 || len(runs[0].Envelope) != 0 {
		t.Errorf("after Abort the queue program got %+v", runs)
	}
	if code, _ := c.Commit(&envelope.Envelope{Rcpts: []string{"a@b"}}); code == 0 {
		t.Error("Commit after Abort succeeded")
	}
}

func TestQueueDiesEarly(t *testing.T) {
	dir := t.TempDir()
	prog := filepath.Join(dir, "queue")
	os.WriteFile(prog, []byte("#!/bin/sh\nexit 53\n"), 0o755)
	c, err := Start(prog, nil, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("x"), 1<<20) // more than a pipe holds
	for i := 0; i < 4; i++ {
		if _, err := c.Write(big); err != nil {
			t.Fatalf("Write: %v", err)
		}
	}
	if code, err := c.Commit(&envelope.Envelope{Rcpts: []string{"a@b"}}); code != 53 || err == nil {
		t.Errorf("Commit = %d %v, want 53", code, err)
	}
}

func TestNoProgram(t *testing.T) {
	if _, err := Start("/nonexistent/queue", nil, os.Stderr); err == nil {
		t.Error("Start of a missing program succeeded")
	}
}

// ownQueue makes an OMAIL_HOME with a queue, and a bin directory whose
// omail-queue is a stand-in that refuses everything with exit 81: a
// message it takes was queued in process, not by running it.
func ownQueue(t *testing.T) (env home.Env, q *queue.Queue, prog string) {
	h := t.TempDir()
	q = queue.New(h)
	if err := q.Init(); err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	prog = filepath.Join(bin, "omail-queue")
	if err := os.WriteFile(prog, []byte("#!/bin/sh\nexit 81\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return home.Env{"OMAIL_HOME=" + h, "OMAIL_BINDIR=" + bin}, q, prog
}

func queued(t *testing.T, q *queue.Queue) []queue.Entry {
	t.Helper()
	es, err := q.Scan()
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func TestOpenQueuesInProcess(t *testing.T) {
	env, q, _ := ownQueue(t)
	c, err := Open(env, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("Subject: x\n\nbody\n"))
	e := &envelope.Envelope{Sender: "a@b", Rcpts: []string{"c@d", "e@f"}}
	if code, err := c.Commit(e); code != 0 || err != nil {
		t.Fatalf("Commit = %d %v", code, err)
	}
	es := queued(t, q)
	if len(es) != 1 || es[0].State.Sender != "a@b" || len(es[0].State.Rcpts) != 2 {
		t.Fatalf("queue holds %+v", es)
	}
	r, closer, err := q.OpenMessage(es[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	msg, _ := io.ReadAll(r)
	want := fmt.Sprintf("Received: (omail-queue %d invoked by uid %d); ", os.Getpid(), os.Getuid())
	if !strings.HasPrefix(string(msg), want) || !strings.HasSuffix(string(msg), "\nSubject: x\n\nbody\n") {
		t.Errorf("queued message %q", msg)
	}
	if tmp, _ := os.ReadDir(q.Path(queue.DirTmp, "")); len(tmp) != 0 {
		t.Errorf("left in tmp/: %v", tmp)
	}
}

func TestOpenRunsTheProgram(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(env *home.Env, prog string)
	}{
		{"set-gid omail-queue", func(_ *home.Env, prog string) { os.Chmod(prog, os.ModeSetgid|0o755) }},
		{"set-uid omail-queue", func(_ *home.Env, prog string) { os.Chmod(prog, os.ModeSetuid|0o755) }},
		{"OMAILQUEUE", func(env *home.Env, prog string) { *env = append(*env, "OMAILQUEUE="+prog) }},
		{"QMAILQUEUE", func(env *home.Env, prog string) { *env = append(*env, "QMAILQUEUE="+prog) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, q, prog := ownQueue(t)
			tc.setup(&env, prog)
			c, err := Open(env, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			c.Write([]byte("x\n"))
			if code, _ := c.Commit(&envelope.Envelope{Rcpts: []string{"a@b"}}); code != 81 {
				t.Errorf("Commit = %d, want the program's 81", code)
			}
			if es := queued(t, q); len(es) != 0 {
				t.Errorf("queued in process: %+v", es)
			}
		})
	}
}

func TestOpenInProcessFailures(t *testing.T) {
	env, q, _ := ownQueue(t)
	long := strings.Repeat("x", envelope.MaxAddress+1) + "@b"
	var log strings.Builder
	c, _ := Open(env, &log)
	c.Write([]byte("x\n"))
	if code, err := c.Commit(&envelope.Envelope{Rcpts: []string{long}}); code != qexit.AddressTooLong || err == nil {
		t.Errorf("too long an address: Commit = %d %v", code, err)
	}
	if !strings.Contains(log.String(), "omail-queue: exit 11:") {
		t.Errorf("log %q", log.String())
	}

	c, _ = Open(env, io.Discard)
	c.Write([]byte("x\n"))
	c.Abort()
	if code, _ := c.Commit(&envelope.Envelope{Rcpts: []string{"a@b"}}); code == 0 {
		t.Error("Commit after Abort succeeded")
	}
	if es := queued(t, q); len(es) != 0 {
		t.Errorf("queued: %+v", es)
	}
	if tmp, _ := os.ReadDir(q.Path(queue.DirTmp, "")); len(tmp) != 0 {
		t.Errorf("left in tmp/: %v", tmp)
	}

	os.RemoveAll(q.Path(queue.DirTodo, ""))
	c, _ = Open(env, io.Discard)
	c.Write([]byte("x\n"))
	if code, _ := c.Commit(&envelope.Envelope{Rcpts: []string{"a@b"}}); code != qexit.QueueError {
		t.Errorf("broken queue: Commit = %d, want %d", code, qexit.QueueError)
	}
}
