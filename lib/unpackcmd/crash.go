package unpackcmd

import (
	"os"
	"strconv"
	"strings"
	"syscall"

	"omail/lib/home"
)

// crashpoint returns the test hook behind OMAIL_CRASHPOINT=name[:N]: the
// program kills itself with SIGKILL the Nth time (default the first) it
// reaches the named point, so tests can crash it at a defined step
// without timing anything. A set-id program ignores it.
func crashpoint(env home.Env) func(string) {
	spec := env.Trusted("OMAIL_CRASHPOINT")
	if spec == "" {
		return nil
	}
	name, nth, _ := strings.Cut(spec, ":")
	n, err := strconv.Atoi(nth)
	if err != nil || n < 1 {
		n = 1
	}
	return func(point string) {
		if point != name {
			return
		}
		if n--; n == 0 {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		}
	}
}
