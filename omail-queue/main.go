// omail-queue puts one message into the queue: qmail-queue's protocol,
// message on fd 0, envelope on fd 1. See docs/omail-queue.md.
package main

import (
	"os"

	"omail/lib/home"
	"omail/lib/queuecmd"
)

func main() {
	os.Exit(queuecmd.Run(os.Args, home.Env(os.Environ()), os.Stdin, os.Stdout, os.Stderr))
}
