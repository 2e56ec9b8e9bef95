// omail-inject is the sendmail-compatible front end (also run as
// sendmail and mailq). See docs/omail-inject.md.
package main

import (
	"os"

	"omail/lib/home"
	"omail/lib/injectcmd"
)

func main() {
	os.Exit(injectcmd.Run(os.Args, home.Env(os.Environ()), os.Stdin, os.Stdout, os.Stderr))
}
