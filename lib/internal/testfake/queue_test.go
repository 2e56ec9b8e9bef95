package testfake

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// feed runs prog as a queue client does: the message on fd 0 and the
// envelope through a pipe on fd 1. With env nil it closes the envelope
// unwritten, as a client that aborts. It returns the exit code.
func feed(t *testing.T, prog string, msg, env []byte) int {
	t.Helper()
	code, err := runQueue(prog, msg, env)
	if err != nil {
		t.Fatalf("%s: %v", prog, err)
	}
	return code
}

// runQueue is feed without t, for goroutines (where t.Fatal must not
// be called).
func runQueue(prog string, msg, env []byte) (int, error) {
	envR, envW, err := os.Pipe()
	if err != nil {
		return -1, err
	}
	cmd := exec.Command(prog)
	cmd.Env = []string{} // the fake needs nothing from its environment
	cmd.Stdin, cmd.Stdout = bytes.NewReader(msg), envR
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		envR.Close()
		envW.Close()
		return -1, err
	}
	envR.Close()
	if env != nil {
		envW.Write(env)
	}
	envW.Close()
	err = cmd.Wait()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &exit):
		return exit.ExitCode(), nil
	}
	return -1, fmt.Errorf("%v %s", err, stderr.Bytes())
}

const envAB = "Fa@b\x00Tc@d\x00Te@f\x00\x00"

func TestQueueKeepsEachRun(t *testing.T) {
	q := NewQueue(t)
	if got := q.Runs(); len(got) != 0 {
		t.Fatalf("runs before any: %+v", got)
	}
	for i := 0; i < 12; i++ { // past 10: runs sort as numbers, not names
		msg := fmt.Sprintf("Subject: %d\n\nbody\n", i)
		if code := feed(t, q.Prog, []byte(msg), []byte(envAB)); code != 0 {
			t.Fatalf("run %d: exit %d", i, code)
		}
	}
	runs := q.Runs()
	if len(runs) != 12 {
		t.Fatalf("%d runs, want 12", len(runs))
	}
	for i, r := range runs {
		if want := fmt.Sprintf("Subject: %d\n\nbody\n", i); string(r.Message) != want || string(r.Envelope) != envAB || r.Exit != 0 {
			t.Errorf("run %d: %q %q exit %d", i, r.Message, r.Envelope, r.Exit)
		}
	}
}

func TestQueueFail(t *testing.T) {
	q := NewQueue(t)
	for _, code := range []int{53, 31, 81} {
		q.Fail(code)
		if got := feed(t, q.Prog, []byte("x\n"), []byte(envAB)); got != code {
			t.Errorf("Fail(%d): exit %d", code, got)
		}
	}
	q.Fail(0)
	if got := feed(t, q.Prog, []byte("last\n"), []byte(envAB)); got != 0 {
		t.Errorf("after Fail(0): exit %d", got)
	}
	runs := q.Runs()
	if len(runs) != 4 || runs[0].Exit != 53 || runs[1].Exit != 31 || runs[2].Exit != 81 || runs[3].Exit != 0 {
		t.Fatalf("runs %+v", runs)
	}
	// A failed run still shows what it was given.
	if string(runs[0].Message) != "x\n" || string(runs[0].Envelope) != envAB {
		t.Errorf("failed run kept %q %q", runs[0].Message, runs[0].Envelope)
	}
	if acc := q.Accepted(); len(acc) != 1 || string(acc[0].Message) != "last\n" {
		t.Errorf("accepted %+v", acc)
	}
}

func TestQueueRefuse(t *testing.T) {
	q := NewQueue(t)
	q.Refuse("refuse-me", 31)
	q.Refuse("also-me", 32)
	q.Fail(53) // a matching rule wins over Fail
	for _, tc := range []struct {
		msg  string
		want int
	}{
		{"Subject: a\n\nrefuse-me please\n", 31},
		{"Subject: b\n\nalso-me\n", 32},
		{"Subject: c\n\nrefuse-me and also-me\n", 31}, // the first rule made
		{"Subject: d\n\nrefuse.me\n", 53},             // fixed strings, not patterns
	} {
		if got := feed(t, q.Prog, []byte(tc.msg), []byte(envAB)); got != tc.want {
			t.Errorf("%q: exit %d, want %d", tc.msg, got, tc.want)
		}
	}
	q.Fail(0)
	if got := feed(t, q.Prog, []byte("fine\n"), []byte(envAB)); got != 0 {
		t.Errorf("plain message: exit %d", got)
	}
	if n := len(q.Runs()); n != 5 {
		t.Errorf("%d runs, want 5", n)
	}
}

func TestQueueAbortedClient(t *testing.T) {
	q := NewQueue(t)
	if got := feed(t, q.Prog, []byte("x\n"), nil); got != 0 {
		t.Fatalf("exit %d", got)
	}
	runs := q.Runs()
	if len(runs) != 1 || string(runs[0].Message) != "x\n" || len(runs[0].Envelope) != 0 {
		t.Errorf("runs %+v", runs)
	}
}

// TestQueueBinaryAndBig: NULs and non-UTF-8 bytes pass untouched, and a
// message larger than a pipe holds is read whole.
func TestQueueBinaryAndBig(t *testing.T) {
	q := NewQueue(t)
	msg := bytes.Repeat([]byte("\x00\xff\r\nline\n"), 200000)
	env := []byte("F\x00T\xffodd@x\x00\x00")
	if got := feed(t, q.Prog, msg, env); got != 0 {
		t.Fatalf("exit %d", got)
	}
	r := q.Runs()[0]
	if !bytes.Equal(r.Message, msg) || !bytes.Equal(r.Envelope, env) {
		t.Errorf("kept %d bytes %q, want %d bytes %q", len(r.Message), r.Envelope, len(msg), env)
	}
}

func TestQueueConcurrentRuns(t *testing.T) {
	q := NewQueue(t)
	const n = 8
	var wg sync.WaitGroup
	codes := make([]int, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, err := runQueue(q.Prog, []byte(fmt.Sprintf("m%d\n", i)), []byte(envAB))
			if err != nil {
				code = -1
			}
			codes[i] = code
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, r := range q.Runs() {
		seen[string(r.Message)] = true
	}
	for i := 0; i < n; i++ {
		if codes[i] != 0 || !seen[fmt.Sprintf("m%d\n", i)] {
			t.Errorf("run %d: exit %d, kept %v", i, codes[i], seen[fmt.Sprintf("m%d\n", i)])
		}
	}
	if len(seen) != n {
		t.Errorf("%d distinct runs kept, want %d", len(seen), n)
	}
}

// TestQueueOddDirectory: the directory is quoted for the shell.
func TestQueueOddDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), `it's a "dir" $HOME`)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	q := newQueueIn(t, dir)
	if got := feed(t, q.Prog, []byte("x\n"), []byte(envAB)); got != 0 {
		t.Fatalf("exit %d", got)
	}
	if runs := q.Runs(); len(runs) != 1 || string(runs[0].Message) != "x\n" {
		t.Errorf("runs %+v", runs)
	}
}

// TestQueueKilledRun: a run that never got to exit reads as Exit -1.
func TestQueueKilledRun(t *testing.T) {
	q := NewQueue(t)
	os.Mkdir(filepath.Join(q.Dir, "run.0"), 0o755)
	os.WriteFile(filepath.Join(q.Dir, "run.0", "message"), []byte("half"), 0o644)
	if got := feed(t, q.Prog, []byte("whole\n"), []byte(envAB)); got != 0 {
		t.Fatalf("exit %d", got)
	}
	runs := q.Runs()
	if len(runs) != 2 || runs[0].Exit != -1 || string(runs[0].Message) != "half" || runs[1].Exit != 0 {
		t.Errorf("runs %+v", runs)
	}
	if acc := q.Accepted(); len(acc) != 1 || string(acc[0].Message) != "whole\n" {
		t.Errorf("accepted %+v", acc)
	}
}
