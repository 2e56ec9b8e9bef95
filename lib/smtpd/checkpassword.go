package smtpd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Checkpassword returns an Auth function that runs argv by the
// checkpassword interface: user NUL password NUL timestamp NUL on fd 3,
// exit 0 for a good password (the program then runs the rest of argv,
// conventionally true), 111 for a temporary failure, any other exit
// code for a wrong password. Killed by a signal, or not run at all, is
// a temporary failure too: it says nothing about the password. The program gets our environment, no stdin, and
// our stderr as its stdout and stderr: never the client's connection.
// A program that takes longer than timeout (a hung password database)
// is killed, with everything it started, and the answer is temporary.
func Checkpassword(argv []string, env []string, stderr io.Writer, timeout time.Duration) func(user, pass string) AuthResult {
	if timeout <= 0 {
		timeout = time.Minute
	}
	return func(user, pass string) AuthResult {
		r, w, err := os.Pipe()
		if err != nil {
			fmt.Fprintf(stderr, "omail-smtpd: checkpassword: %v\n", err)
			return AuthTemp
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Env = env
		cmd.Stdout, cmd.Stderr = stderr, stderr
		cmd.ExtraFiles = []*os.File{r}
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		cmd.WaitDelay = time.Second
		if err := cmd.Start(); err != nil {
			r.Close()
			w.Close()
			fmt.Fprintf(stderr, "omail-smtpd: cannot run %s: %v\n", argv[0], err)
			return AuthTemp
		}
		r.Close()
		// user and password are at most a few kilobytes: the pipe
		// buffer takes them without waiting for the program.
		fmt.Fprintf(w, "%s\x00%s\x00\x00", user, pass)
		w.Close()
		err = cmd.Wait()
		var ee *exec.ExitError
		switch {
		case ctx.Err() != nil:
			fmt.Fprintf(stderr, "omail-smtpd: %s took longer than %v; killed\n", argv[0], timeout)
			return AuthTemp
		case err == nil:
			return AuthOK
		case errors.Is(err, exec.ErrWaitDelay):
			// It exited 0, but something it started still holds its
			// stdout or stderr: the password was good all the same.
			fmt.Fprintf(stderr, "omail-smtpd: %s exited 0 but left its output open\n", argv[0])
			return AuthOK
		case errors.As(err, &ee) && ee.ExitCode() == 111:
			return AuthTemp
		case errors.As(err, &ee) && ee.ExitCode() >= 0:
			return AuthFail
		}
		fmt.Fprintf(stderr, "omail-smtpd: %s: %v\n", argv[0], err)
		return AuthTemp
	}
}
