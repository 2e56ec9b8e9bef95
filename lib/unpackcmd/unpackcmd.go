// Package unpackcmd is the command omail-unpack, the OCMP hooks:
//
//	omail-unpack proxy FILE        each message into the queue
//	omail-unpack client USER FILE  every message into mailspool/USER
//
// It reads its arguments, runs lib/unpacker, and maps the outcome to the
// exit code OCMP acts on: 0, FILE is done with and removed; 100, FILE was
// damaged or refused (docs/omail-unpack.md, Trust) and is in the
// quarantine; 111, temporary trouble, FILE is left
// for a re-run. See docs/omail-unpack.md.
package unpackcmd

import (
	"errors"
	"fmt"
	"io"

	"omail/lib/crashpoint"
	"omail/lib/eventlog"
	"omail/lib/home"
	"omail/lib/qexit"
	"omail/lib/unpacker"
)

// Run is omail-unpack.
func Run(args []string, env home.Env, stdin io.Reader, stdout, stderr io.Writer) int {
	log := eventlog.New(stderr, "omail-unpack")
	u := &unpacker.Unpacker{Home: env.Dir(), Env: env, Log: log, Crash: crashpoint.New(env)}
	var err error
	switch {
	case len(args) == 4 && args[1] == "client":
		err = u.Unpack(args[3], args[2])
	case len(args) == 3 && args[1] == "proxy":
		err = u.Unpack(args[2], "")
	default:
		// A wrong dirapi.conf line: temporary, so OCMP keeps the file
		// until a person fixes the line.
		fmt.Fprintln(stderr, "omail-unpack: usage: omail-unpack client USER FILE | omail-unpack proxy FILE")
		return qexit.Temp
	}
	if err == nil {
		return qexit.OK
	}
	log.Printf("%v", err)
	if errors.Is(err, unpacker.ErrQuarantined) {
		return qexit.Perm
	}
	return qexit.Temp
}
