// omail-pack writes OCMP bundles from the outbox (and, with
// proxyscanmail, from mbox files). See docs/omail-pack.md.
package main

import (
	"os"

	"omail/lib/home"
	"omail/lib/packcmd"
)

func main() {
	os.Exit(packcmd.Run(os.Args, home.Env(os.Environ()), os.Stdin, os.Stdout, os.Stderr))
}
