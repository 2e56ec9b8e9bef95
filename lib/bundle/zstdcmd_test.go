package bundle

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
)

// The zstd program runs in a process group of its own: a signal to
// omail-pack's group (Ctrl-C at a terminal, SIGALRM to "a pass now"
// sent to the group) is omail-pack's to handle, and does not kill the
// program in the middle of a bundle. A helper process (this test
// binary) starts the program in a group of its own, the test signals
// that group, and the helper's bundle must still end well.
func TestZstdOwnProcessGroup(t *testing.T) {
	if _, err := exec.LookPath("zstd"); err != nil {
		t.Fatalf("the zstd program (Debian package zstd, installed by the Makefile's deps): %v", err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperZstdSignalled$")
	cmd.Env = append(os.Environ(), "BUNDLE_ZSTD_HELPER=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stderr = os.Stderr
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "started ") {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper said %q, %v", line, err)
	}
	// The signals a person sends to the group: each is pending for every
	// process of the group when kill returns.
	for _, sig := range []syscall.Signal{syscall.SIGALRM, syscall.SIGINT} {
		if err := syscall.Kill(-cmd.Process.Pid, sig); err != nil {
			t.Fatal(err)
		}
	}
	in.Write([]byte("go\n"))
	in.Close()
	rest, _ := io.ReadAll(out)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v; it said %q", err, line+string(rest))
	}
	if !strings.Contains(string(rest), "closed") {
		t.Fatalf("helper said %q", line+string(rest))
	}
}

// TestHelperZstdSignalled is not a test: TestZstdOwnProcessGroup runs
// it in another process.
func TestHelperZstdSignalled(t *testing.T) {
	if os.Getenv("BUNDLE_ZSTD_HELPER") == "" {
		return
	}
	// What omail-pack does with them: its own, handled.
	signal.Notify(make(chan os.Signal, 2), syscall.SIGALRM, syscall.SIGINT)
	c, err := startZstd(io.Discard, ZstdArgs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("started " + c.cmd.Path + "\n")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte(strings.Repeat("mail\n", 100000))); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("closed\n")
}
