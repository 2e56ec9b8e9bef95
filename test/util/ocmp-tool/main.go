// ocmp-tool is a helper for the test/ocmp-* scenario tests: it makes
// outbox entries the way omail-deliver does (outbox.Put) and appends to
// an mbox the way local delivery does (lib/mbox), so the tests can set up
// state without a running deliverer.
//
//	ocmp-tool put ENDPOINT ID SENDER RCPT... < message
//	ocmp-tool mboxadd MBOX SENDER < message
//	ocmp-tool genmail MBYTES > mbox       synthetic mail, as an mbox
//	ocmp-tool genbundle FILE MBYTES       the same mail as a zstd bundle
//	ocmp-tool rss CMD ARGS...             run CMD, print its peak RSS in KiB
package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
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
	case args[0] == "genmail" && len(args) == 2:
		mb, err := strconv.Atoi(args[1])
		if err != nil {
			return err
		}
		return genMbox(os.Stdout, int64(mb)<<20)
	case args[0] == "genbundle" && len(args) == 3:
		mb, err := strconv.Atoi(args[2])
		if err != nil {
			return err
		}
		return genBundle(args[1], int64(mb)<<20)
	case args[0] == "rss" && len(args) >= 2:
		c := exec.Command(args[1], args[2:]...)
		c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stderr, os.Stderr
		err := c.Run()
		if c.ProcessState == nil {
			return err
		}
		fmt.Println(c.ProcessState.SysUsage().(*syscall.Rusage).Maxrss)
		if code := c.ProcessState.ExitCode(); code != 0 {
			os.Exit(code)
		}
		return nil
	}
	return fmt.Errorf("bad arguments %q", args)
}
