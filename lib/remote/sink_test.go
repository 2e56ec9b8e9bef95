package remote

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// startSink runs Postfix's smtp-sink on 127.0.0.1 with extra flags,
// dumping each message into a file in the returned directory. It waits
// for the listening socket by reading strace's report of listen(), not
// by polling. The tools come from test/deps; a missing one fails.
func startSink(t *testing.T, flags ...string) (port int, dumpDir string) {
	t.Helper()
	for _, tool := range []string{"smtp-sink", "strace"} {
		if _, err := exec.LookPath(tool); err != nil {
			if _, err2 := os.Stat("/usr/sbin/" + tool); err2 != nil {
				t.Fatalf("%s missing: run test/deps", tool)
			}
		}
	}
	// smtp-sink as root must drop to a user, who must be able to write
	// the dumps: a world-writable directory of its own.
	dir, err := os.MkdirTemp("", "omail-sink")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	port = deadPort(t)
	// strace -D: the process started is smtp-sink itself (strace runs
	// as a detached grandchild), so killing it leaves nothing behind.
	args := []string{"-D", "-qq", "-e", "trace=listen", "smtp-sink"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "nobody")
	}
	args = append(args, flags...)
	args = append(args, "-d", filepath.Join(dir, "msg."), "127.0.0.1:"+strconv.Itoa(port), "10")
	cmd := exec.Command("strace", args...)
	cmd.Env = append(os.Environ(), "PATH=/usr/sbin:/usr/bin:/sbin:/bin")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "listen(") && strings.HasSuffix(l, "= 0") {
			go io.Copy(io.Discard, stderr) // so that smtp-sink never blocks
			return port, dir
		}
		t.Log("smtp-sink:", l)
	}
	t.Fatalf("smtp-sink did not start")
	return 0, ""
}

// sinkDump reads the one dump file and splits it into smtp-sink's
// envelope lines (X-Mail-Args etc.) and the message as received, with
// smtp-sink's own Received field and final separator line taken off.
func sinkDump(t *testing.T, dir string) (env map[string][]string, msg string) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "msg.*"))
	if len(files) != 1 {
		t.Fatalf("%d dump files, want 1", len(files))
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	env = map[string][]string{}
	rest := string(b)
	for strings.HasPrefix(rest, "X-") {
		line, r, _ := strings.Cut(rest, "\n")
		k, v, _ := strings.Cut(line, ": ")
		env[k] = append(env[k], v)
		rest = r
	}
	if !strings.HasPrefix(rest, "Received: ") {
		t.Fatalf("no Received from smtp-sink: %q", rest)
	}
	_, rest, _ = strings.Cut(rest, "\n")
	for strings.HasPrefix(rest, "\t") {
		_, rest, _ = strings.Cut(rest, "\n")
	}
	// smtp-sink ends each dumped transaction with an empty line.
	if !strings.HasSuffix(rest, "\n\n") {
		t.Fatalf("dump does not end in an empty line: %q", rest)
	}
	return env, strings.TrimSuffix(rest, "\n")
}

// sampleLF is sample as smtp-sink stores it: LF line ends (its dump
// format), the bare CR a line end, and the final newline added.
var sampleLF = strings.ReplaceAll(sampleWire, "\r\n", "\n")

func TestSmtpSink(t *testing.T) {
	port, dir := startSink(t)
	c := &Client{Helo: "omail.test"}
	res := c.Deliver(context.Background(), relay(port), writeMsg(t, sample), "joe@kiosk1.local", []string{"a@example.test", "b@example.test"})
	checkStatuses(t, res, "a@example.test=ok b@example.test=ok")
	env, msg := sinkDump(t, dir)
	if msg != sampleLF {
		t.Errorf("smtp-sink got\n%q\nwant\n%q", msg, sampleLF)
	}
	if got := strings.Join(env["X-Rcpt-Args"], ","); got != "<a@example.test>,<b@example.test>" {
		t.Errorf("rcpts %q", got)
	}
	if got := strings.Join(env["X-Mail-Args"], ","); got != "<joe@kiosk1.local> BODY=8BITMIME" {
		t.Errorf("MAIL args %q", got)
	}
	if got := strings.Join(env["X-Helo-Args"], ","); got != "omail.test" {
		t.Errorf("HELO %q", got)
	}
}

// Without PIPELINING and 8BITMIME: one command at a time, and an 8-bit
// message is never sent as it is (RFC 6152): the sample, whose Subject
// is 8-bit, cannot be converted without SMTPUTF8 and bounces 5.6.3; with
// the 8-bit text in its body only, it is converted to 7-bit and arrives
// with no BODY parameter, its text as sent once decoded.
func TestSmtpSinkPlain(t *testing.T) {
	port, dir := startSink(t, "-p", "-8")
	res := (&Client{}).Deliver(context.Background(), relay(port), writeMsg(t, sample), "", []string{"a@example.test", "b@example.test"})
	checkStatuses(t, res, "a@example.test=perm b@example.test=perm")
	if !strings.HasPrefix(res[0].Text, "5.6.3 ") || !strings.Contains(res[0].Text, "Subject") || !strings.Contains(res[0].Text, "8BITMIME") {
		t.Errorf("bounce text %q", res[0].Text)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "msg.*")); len(files) != 0 {
		t.Fatalf("something was sent: %v", files)
	}
	bodyOnly := strings.Replace(sample, "Subject: caf\xc3\xa9\n", "Subject: cafe\n", 1) + "\ncaf\xc3\xa9 cr\xc3\xa8me\n"
	res = (&Client{}).Deliver(context.Background(), relay(port), writeMsg(t, bodyOnly), "", []string{"a@example.test", "b@example.test"})
	checkStatuses(t, res, "a@example.test=ok b@example.test=ok")
	env, msg := sinkDump(t, dir)
	if got := strings.Join(env["X-Mail-Args"], ","); got != "<>" {
		t.Errorf("MAIL args %q", got)
	}
	for i := 0; i < len(msg); i++ {
		if msg[i] >= 0x80 {
			t.Fatalf("8-bit byte at %d of what smtp-sink got:\n%s", i, msg)
		}
	}
	got := leaves(t, msg)
	want := "text/plain: .leading dot\n..two dots\nbare\ncr and crlf\nlast line without newline\ncaf\xc3\xa9 cr\xc3\xa8me\n"
	if len(got) != 1 || got[0] != want {
		t.Errorf("decoded %q\nwant %q\n%s", got, want, msg)
	}
	if !strings.Contains(msg, "Subject: cafe\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n") {
		t.Errorf("header:\n%s", msg)
	}
}

// smtp-sink rejecting every RCPT with 550: each recipient bounces.
func TestSmtpSinkRcptRejected(t *testing.T) {
	port, _ := startSink(t, "-f", "RCPT")
	res := (&Client{}).Deliver(context.Background(), relay(port), writeMsg(t, "x\n"), "s@x", []string{"a@example.test"})
	checkStatuses(t, res, "a@example.test=perm")
}
