// Package packcmd is the command omail-pack: it reads its arguments and
// signals and runs lib/packer's passes. See docs/omail-pack.md.
package packcmd

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"omail/lib/crashpoint"
	"omail/lib/eventlog"
	"omail/lib/home"
	"omail/lib/packer"
	"omail/lib/qexit"
)

// Run is omail-pack: one pass, or with -watch a pass every pollinterval
// seconds until SIGTERM. Exit 0, or 111 when a pass met temporary
// trouble (the mail stays where it was), or 100 for a usage error.
func Run(args []string, env home.Env, stdin io.Reader, stdout, stderr io.Writer) int {
	watch := false
	for _, a := range args[1:] {
		switch a {
		case "-watch":
			watch = true
		default:
			fmt.Fprintf(stderr, "omail-pack: usage: omail-pack [-watch]\n")
			return qexit.Usage
		}
	}
	p := &packer.Packer{Home: env.Dir(), Log: eventlog.New(stderr, "omail-pack"), Crash: crashpoint.New(env)}
	if !watch {
		if err := p.Pass(); err != nil {
			return qexit.Temp // logged by Pass
		}
		return qexit.OK
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	wake := make(chan os.Signal, 1)
	signal.Notify(wake, syscall.SIGALRM)
	stopped := make(chan struct{})
	go func() { <-stop; close(stopped) }()
	woken := make(chan struct{}, 1)
	go func() {
		for range wake {
			select {
			case woken <- struct{}{}:
			default:
			}
		}
	}()
	p.Watch(woken, stopped, nil)
	fmt.Fprintln(stderr, "omail-pack: exiting")
	return qexit.OK
}
