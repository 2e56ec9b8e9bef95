// omail-smtpd receives mail by SMTP on stdin/stdout, one connection per
// process, as qmail-smtpd; or, resident (-listen, or sockets from
// systemd), every connection in one process. See docs/omail-smtpd.md.
package main

import (
	"os"

	"omail/lib/home"
	"omail/lib/smtpdcmd"
)

func main() {
	os.Exit(smtpdcmd.Run(os.Args, home.Env(os.Environ()), os.Stdin, os.Stdout, os.Stderr))
}
