// omail-unpack is the OCMP hook: `omail-unpack proxy FILE` queues the
// mail in a bundle, `omail-unpack client USER FILE` delivers it into
// USER's mailbox. See docs/omail-unpack.md.
package main

import (
	"os"

	"omail/lib/home"
	"omail/lib/unpackcmd"
)

func main() {
	os.Exit(unpackcmd.Run(os.Args, home.Env(os.Environ()), os.Stdin, os.Stdout, os.Stderr))
}
