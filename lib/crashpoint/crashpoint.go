// Package crashpoint gives programs named points where tests can crash
// them or run a command, to test what a crash at each step leaves.
package crashpoint

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"omail/lib/home"
)

// New returns the test hooks at named points of the program:
//
//   - OMAIL_CRASHPOINT=name[:N]: the program kills itself with SIGKILL
//     the Nth time (default the first) it reaches the point, so tests
//     can crash it at a defined step without timing anything;
//   - OMAIL_HOOKPOINT=name and OMAIL_HOOKCMD=command: at the point, the
//     program runs "sh -c command" and waits for it (tests use it to
//     change things under the program's feet, e.g. deliver mail into an
//     mbox being packed).
//
// A set-id program ignores both. With neither set, New returns nil.
func New(env home.Env) Hook {
	spec := env.Trusted("OMAIL_CRASHPOINT")
	hook, cmd := env.Trusted("OMAIL_HOOKPOINT"), env.Trusted("OMAIL_HOOKCMD")
	if spec == "" && (hook == "" || cmd == "") {
		return nil
	}
	name, nth, _ := strings.Cut(spec, ":")
	n, err := strconv.Atoi(nth)
	if err != nil || n < 1 {
		n = 1
	}
	return func(point string) {
		if hook != "" && point == hook {
			c := exec.Command("/bin/sh", "-c", cmd)
			c.Stdout, c.Stderr = os.Stderr, os.Stderr
			c.Run()
		}
		if spec == "" || point != name {
			return
		}
		if n--; n == 0 {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		}
	}
}

// Hook is a program's test hooks, called with the name of each point the
// program reaches. nil means none.
type Hook func(point string)

// At runs the hooks for point; a nil Hook does nothing.
func (h Hook) At(point string) {
	if h != nil {
		h(point)
	}
}
