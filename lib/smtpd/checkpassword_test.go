package smtpd

import (
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestCheckpassword(t *testing.T) {
	dir := t.TempDir()
	prog := filepath.Join(dir, "checkpw")
	// Reads fd 3 whole and compares; on success runs its arguments.
	script := "#!/bin/sh\nin=$(tr '\\0' : <&3)\ncase $in in\n  joe:secret::) exec \"$@\";;\n  down:*) exit 111;;\nesac\nexit 1\n"
	if err := os.WriteFile(prog, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=" + os.Getenv("PATH")}
	check := Checkpassword([]string{prog, "true"}, env, io.Discard, time.Minute)
	for _, c := range []struct {
		user, pass string
		want       AuthResult
	}{
		{"joe", "secret", AuthOK}, {"joe", "wrong", AuthFail}, {"down", "x", AuthTemp},
	} {
		if got := check(c.user, c.pass); got != c.want {
			t.Errorf("%s/%s: %v, want %v", c.user, c.pass, got, c.want)
		}
	}
	// The program's own command failing after a good password is a failure.
	if got := Checkpassword([]string{prog, "false"}, env, io.Discard, time.Minute)("joe", "secret"); got != AuthFail {
		t.Errorf("good password, then false: %v", got)
	}
	if got := Checkpassword([]string{filepath.Join(dir, "missing")}, env, io.Discard, time.Minute)("joe", "secret"); got != AuthTemp {
		t.Errorf("missing program: %v", got)
	}
}

// A checkpassword that never answers (a hung password database) is
// killed at the timeout, children and all, and the answer is temporary.
func TestCheckpasswordHung(t *testing.T) {
	dir := t.TempDir()
	prog := filepath.Join(dir, "hang")
	if err := os.WriteFile(prog, []byte("#!/bin/sh\ntail -f /dev/null\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	got := Checkpassword([]string{prog}, []string{"PATH=" + os.Getenv("PATH")}, io.Discard, 200*time.Millisecond)("joe", "x")
	if got != AuthTemp {
		t.Errorf("hung checkpassword: %v, want AuthTemp", got)
	}
}

// A checkpassword killed by a signal (a crash, the OOM killer) tells
// nothing about the password: temporary, like exit 111. Another exit
// code is a wrong password.
func TestCheckpasswordKilledIsTemporary(t *testing.T) {
	env := []string{"PATH=" + os.Getenv("PATH")}
	for _, c := range []struct {
		prog string
		want AuthResult
	}{
		{"kill -KILL $$", AuthTemp}, {"kill -TERM $$", AuthTemp}, {"kill -SEGV $$", AuthTemp},
		{"exit 2", AuthFail}, {"exit 100", AuthFail},
	} {
		if got := Checkpassword([]string{"/bin/sh", "-c", c.prog}, env, io.Discard, time.Minute)("joe", "x"); got != c.want {
			t.Errorf("%s: %v, want %v", c.prog, got, c.want)
		}
	}
}

// A checkpassword that says yes (exit 0) but leaves a child holding its
// output (when omail-smtpd's stderr is not a file, as under inetd, the
// output is a pipe) is still a yes. The child here ends itself on
// SIGPIPE once the pipe is closed.
func TestCheckpasswordChildHoldsOutput(t *testing.T) {
	prog := "(while echo still here; do sleep 0.1; done) & exit 0"
	got := Checkpassword([]string{"/bin/sh", "-c", prog}, []string{"PATH=" + os.Getenv("PATH")}, io.Discard, time.Minute)("joe", "x")
	if got != AuthOK {
		t.Errorf("exit 0 with a child holding stdout: %v, want AuthOK", got)
	}
}
