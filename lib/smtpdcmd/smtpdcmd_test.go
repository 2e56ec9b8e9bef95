package smtpdcmd

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"omail/lib/home"
	"omail/lib/qexit"
)

// setup makes an OMAIL_HOME with control files and a fake queue program
// that keeps the message, envelope and its environment in the home and
// exits $QEXIT.
func setup(t *testing.T, files map[string]string) home.Env {
	h := t.TempDir()
	os.MkdirAll(filepath.Join(h, "control"), 0o755)
	files["me"] = "mx.us.example"
	for n, c := range files {
		os.WriteFile(filepath.Join(h, "control", n), []byte(c+"\n"), 0o644)
	}
	q := filepath.Join(h, "fakequeue")
	os.WriteFile(q, []byte("#!/bin/sh\nenv -0 >\"$OMAIL_HOME/qenv\"\ncat >\"$OMAIL_HOME/msg\"\ncat 0<&1 >\"$OMAIL_HOME/env\"\nexit ${QEXIT:-0}\n"), 0o755)
	return home.Env{"OMAIL_HOME=" + h, "OMAILQUEUE=" + q, "TCPREMOTEIP=::ffff:192.168.1.9", "PATH=" + os.Getenv("PATH")}
}

func session(t *testing.T, env home.Env, args []string, script string) (string, string, int) {
	var out, errb bytes.Buffer
	code := Run(append([]string{"omail-smtpd"}, args...), env, strings.NewReader(script), &out, &errb)
	return out.String(), errb.String(), code
}

func TestRun(t *testing.T) {
	env := setup(t, map[string]string{"rcpthosts": "us.example", "relayclients": "192.168.1.", "smtpgreeting": "hello there", "databytes": "50"})
	out, log, code := session(t, env, nil, "EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<u@far.example>\r\nDATA\r\nSubject: hi\r\n\r\nbody\r\n.\r\nQUIT\r\n")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, log)
	}
	for _, want := range []string{"220 hello there ESMTP\r\n", "SIZE 50\r\n", "250 2.1.5", "250 2.0.0 ok", "221 2.0.0"} {
		if !strings.Contains(out, want) {
			t.Errorf("replies lack %q:\n%s", want, out)
		}
	}
	if !strings.Contains(log, `relay="relayclients 192.168.1."`) {
		t.Errorf("log: %s", log)
	}
	h := env.Dir()
	msg, _ := os.ReadFile(filepath.Join(h, "msg"))
	envl, _ := os.ReadFile(filepath.Join(h, "env"))
	if !strings.HasPrefix(string(msg), "Received: from x ([192.168.1.9])\n\tby mx.us.example with ESMTP id ") ||
		!strings.HasSuffix(string(msg), "\nSubject: hi\n\nbody\n") {
		t.Errorf("message %q", msg)
	}
	if string(envl) != "Fa@b\x00Tu@far.example\x00\x00" {
		t.Errorf("envelope %q", envl)
	}
}

func TestRunQueueFailure(t *testing.T) {
	env := setup(t, map[string]string{"rcpthosts": "us.example"})
	env = append(env, "QEXIT=53", "DATABYTES=10")
	out, _, _ := session(t, env, nil, "HELO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<u@us.example>\r\nDATA\r\nshort\r\n.\r\nQUIT\r\n")
	if !strings.Contains(out, "451 4.3.0") {
		t.Errorf("replies:\n%s", out)
	}
}

func TestRunBadConfig(t *testing.T) {
	for _, files := range []map[string]string{
		{"maxrcpt": "lots"},
	} {
		env := setup(t, files)
		out, log, code := session(t, env, nil, "QUIT\r\n")
		if code != qexit.Temp || !strings.HasPrefix(out, "421 4.3.0") {
			t.Errorf("%v: exit %d, %q, %s", files, code, out, log)
		}
	}
	env := setup(t, map[string]string{})
	env = append(env, "DATABYTES=x")
	if _, _, code := session(t, env, nil, "QUIT\r\n"); code != qexit.Temp {
		t.Errorf("DATABYTES=x: exit %d", code)
	}
}

func TestRunCDB(t *testing.T) {
	env := setup(t, map[string]string{"morercpthosts": "More.Example.", "relaymailfrom": "@friends.example"})
	out, log, code := session(t, env, []string{"-cdb"}, "")
	if code != 0 || !strings.Contains(out, "morercpthosts.cdb") || !strings.Contains(out, "relaymailfrom.cdb") {
		t.Fatalf("exit %d %s %s", code, out, log)
	}
	os.Remove(filepath.Join(env.Dir(), "control", "relaymailfrom"))
	out, _, _ = session(t, env, nil, "HELO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<u@more.example>\r\n"+
		"RSET\r\nMAIL FROM:<x@Friends.Example>\r\nRCPT TO:<u@far.example>\r\nQUIT\r\n")
	if strings.Count(out, "250 2.1.5") != 2 {
		t.Errorf("replies:\n%s", out)
	}
	if _, _, code := session(t, env, []string{"-cdb", "x"}, ""); code != qexit.Perm {
		t.Errorf("-cdb x: exit %d", code)
	}
	if _, _, code := session(t, env, []string{"-v"}, ""); code != qexit.Perm {
		t.Errorf("-v: exit %d", code)
	}
}

// An unusable servercert.pem (garbage, or unreadable to omail-smtpd's
// user) costs STARTTLS, said in the log of every session, not the mail;
// a session that cannot do without TLS is refused with 421.
func TestBadCertificate(t *testing.T) {
	env := setup(t, map[string]string{"rcpthosts": "us.example", "servercert.pem": "not a certificate"})
	script := "EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<u@us.example>\r\nDATA\r\nSubject: hi\r\n\r\nbody\r\n.\r\nQUIT\r\n"
	for i := 0; i < 2; i++ {
		out, log, code := session(t, env, nil, script)
		if code != qexit.OK || !strings.Contains(out, "250 2.0.0 ok") || strings.Contains(out, "STARTTLS") {
			t.Fatalf("session %d: exit %d\n%s\n%s", i, code, out, log)
		}
		if !strings.Contains(log, "servercert.pem") || !strings.Contains(log, "STARTTLS not offered") {
			t.Errorf("session %d: no log line about the certificate: %s", i, log)
		}
	}
	for _, extra := range []string{"AUTHREQUIRED=1", "SMTPS=1"} {
		out, log, code := session(t, append(env, extra), nil, script)
		if code != qexit.Temp || strings.Contains(out, "250 2.0.0 ok") || !strings.Contains(log, "servercert.pem") {
			t.Errorf("%s: exit %d\n%s\n%s", extra, code, out, log)
		}
		if extra == "AUTHREQUIRED=1" && !strings.HasPrefix(out, "421 4.3.0") {
			t.Errorf("%s: %q, want 421", extra, out)
		}
	}
}

// systemd with Accept=yes runs omail-smtpd per connection with the
// connection as fd 3 (and as stdin and stdout), LISTEN_FDS=1 and
// LISTEN_PID its pid. The queue program must get neither the socket
// nor the variables: it would hold the client's connection open after
// the session. The test runs itself as that omail-smtpd.
func TestAcceptYesChildren(t *testing.T) {
	if os.Getenv("OMAIL_TEST_ACCEPTYES") == "1" {
		env := append(home.Env(os.Environ()), "LISTEN_FDS=1", "LISTEN_FDNAMES=connection",
			"LISTEN_PID="+strconv.Itoa(os.Getpid()))
		os.Exit(Run([]string{"omail-smtpd"}, env, os.Stdin, os.Stdout, os.Stderr))
	}
	env := setup(t, map[string]string{"rcpthosts": "us.example"})
	h := env.Dir()
	q := filepath.Join(h, "fdqueue")
	os.WriteFile(q, []byte("#!/bin/sh\nenv -0 >\"$OMAIL_HOME/qenv\"\n"+
		"for f in /proc/$$/fd/*; do readlink \"$f\"; done >\"$OMAIL_HOME/qfds\"\n"+
		"cat >/dev/null\ncat 0<&1 >/dev/null\n"), 0o755)
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "client"), os.NewFile(uintptr(fds[1]), "connection")
	defer ours.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestAcceptYesChildren$")
	cmd.Env = append(env, "OMAILQUEUE="+q, "OMAIL_TEST_ACCEPTYES=1")
	var log bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr, cmd.ExtraFiles = theirs, theirs, &log, []*os.File{theirs}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	theirs.Close()
	io.WriteString(ours, "HELO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<u@us.example>\r\nDATA\r\nSubject: hi\r\n\r\nbody\r\n.\r\nQUIT\r\n")
	out, _ := io.ReadAll(ours)
	if err := cmd.Wait(); err != nil || !strings.Contains(string(out), "250 2.0.0 ok") {
		t.Fatalf("%v\n%s\n%s", err, out, log.String())
	}
	qenv := readEnv(t, filepath.Join(h, "qenv"))
	for _, v := range []string{"LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"} {
		if _, ok := qenv[v]; ok {
			t.Errorf("the queue program got %s=%s", v, qenv[v])
		}
	}
	qfds, err := os.ReadFile(filepath.Join(h, "qfds"))
	if err != nil || len(qfds) == 0 {
		t.Fatalf("no list of the queue program's fds: %v", err)
	}
	if strings.Contains(string(qfds), "socket:") {
		t.Errorf("the queue program holds a socket (the client's connection):\n%s", qfds)
	}
}
