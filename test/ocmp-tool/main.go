// ocmp-tool is a helper for the test/ocmp-* scenario tests: it makes
// outbox entries the way omail-deliver does (outbox.Put) and appends to
// an mbox the way local delivery does (lib/mbox), so the tests can set up
// state without a running deliverer.
//
//	ocmp-tool put ENDPOINT ID SENDER RCPT... < message
//	ocmp-tool mboxadd MBOX SENDER < message
package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"omail/lib/home"
	"omail/lib/mbox"
	"omail/lib/outbox"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "ocmp-tool:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 1 {
		return fmt.Errorf("usage: put ENDPOINT ID SENDER RCPT... | mboxadd MBOX SENDER")
	}
	switch {
	case args[0] == "put" && len(args) >= 5:
		tmp, err := os.CreateTemp("", "ocmp-tool")
		if err != nil {
			return err
		}
		defer os.Remove(tmp.Name())
		if _, err := io.Copy(tmp, os.Stdin); err != nil {
			return err
		}
		tmp.Close()
		h := home.Env(os.Environ()).Dir()
		return outbox.Put(h, args[1], args[2], tmp.Name(), args[3], args[4:])
	case args[0] == "mboxadd" && len(args) == 3:
		a, err := mbox.Open(filepath.Clean(args[1]))
		if err != nil {
			return err
		}
		if err := a.Add(args[2], nil, os.Stdin, time.Now()); err != nil {
			a.Abort()
			return err
		}
		return a.Commit()
	}
	return fmt.Errorf("bad arguments %q", args)
}
