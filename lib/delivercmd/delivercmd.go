// Package delivercmd is the body of omail-deliver, the queue manager.
package delivercmd

import (
	"fmt"
	"io"

	"omail/lib/home"
	"omail/lib/queue"
)

// Run is omail-deliver's main.
func Run(args []string, env home.Env, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 1 && args[1] == "-init" {
		// Create the queue directories and the trigger fifo under
		// OMAIL_HOME, as far as they are missing (make install runs it).
		if err := queue.New(env.Dir()).Init(); err != nil {
			fmt.Fprintf(stderr, "omail-deliver: cannot create the queue: %v\n", err)
			return 111
		}
		return 0
	}
	fmt.Fprintln(stderr, "omail-deliver: delivery is not implemented yet; mail stays queued")
	return 111
}
