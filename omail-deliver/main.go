// omail-deliver is the queue manager: it routes and delivers queued mail,
// retries and bounces. See docs/omail-deliver.md.
package main

import (
	"os"

	"omail/lib/delivercmd"
	"omail/lib/home"
)

func main() {
	os.Exit(delivercmd.Run(os.Args, home.Env(os.Environ()), os.Stdin, os.Stdout, os.Stderr))
}
