package qqclient

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"omail/lib/envelope"
)

// fakeQueue writes a queue program that saves message and envelope in
// dir and exits with $EXIT.
func fakeQueue(t *testing.T) (prog, dir string) {
	dir = t.TempDir()
	prog = filepath.Join(dir, "queue")
	script := "#!/bin/sh\ncat >\"$DIR/msg\" || exit 54\ncat 0<&1 >\"$DIR/env\" || exit 54\nexit ${EXIT:-0}\n"
	if err := os.WriteFile(prog, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return prog, dir
}

func TestCommit(t *testing.T) {
	prog, dir := fakeQueue(t)
	c, err := Start(prog, []string{"DIR=" + dir}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("Subject: x\n\nbody\n"))
	e := &envelope.Envelope{Sender: "a@b", Rcpts: []string{"c@d", "e@f"}}
	if code, err := c.Commit(e); code != 0 || err != nil {
		t.Fatalf("Commit = %d %v", code, err)
	}
	msg, _ := os.ReadFile(filepath.Join(dir, "msg"))
	env, _ := os.ReadFile(filepath.Join(dir, "env"))
	var want bytes.Buffer
	envelope.Write(&want, e)
	if string(msg) != "Subject: x\n\nbody\n" || !bytes.Equal(env, want.Bytes()) {
		t.Errorf("queue got %q %q", msg, env)
	}
}

func TestExitCodes(t *testing.T) {
	prog, dir := fakeQueue(t)
	for _, code := range []int{53, 31, 81} {
		c, err := Start(prog, []string{"DIR=" + dir, "EXIT=" + itoa(code)}, os.Stderr)
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
	prog, dir := fakeQueue(t)
	c, err := Start(prog, []string{"DIR=" + dir}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("x\n"))
	c.Abort()
	env, _ := os.ReadFile(filepath.Join(dir, "env"))
	if len(env) != 0 {
		t.Errorf("envelope after Abort: %q", env)
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

func itoa(n int) string { return string(rune('0'+n/10)) + string(rune('0'+n%10)) }
