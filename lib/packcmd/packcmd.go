// Package packcmd is the command omail-pack: it reads its arguments and
// signals and runs lib/packer's passes. See docs/omail-pack.md.
package packcmd

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"omail/lib/control"
	"omail/lib/crashpoint"
	"omail/lib/dict"
	"omail/lib/eventlog"
	"omail/lib/home"
	"omail/lib/ocmpkey"
	"omail/lib/packer"
	"omail/lib/qexit"
)

// Run is omail-pack: one pass, or with -watch a pass every pollinterval
// seconds until SIGTERM. Exit 0, or 111 when a pass met temporary
// trouble (the mail stays where it was), or 100 for a usage error.
// -keygen makes the home's signing key unless it has one, and prints
// its public key. -dict ID writes a dictionary this omail knows to
// stdout, for `zstd -dc -D FILE`; -dict alone lists their ids, the
// newest first.
func Run(args []string, env home.Env, stdin io.Reader, stdout, stderr io.Writer) int {
	watch := false
	switch {
	case len(args) == 2 && args[1] == "-watch":
		watch = true
	case len(args) == 2 && args[1] == "-keygen":
		return keygen(env, stdout, stderr)
	case len(args) == 2 && args[1] == "-dict":
		return listDicts(stdout)
	case len(args) == 3 && args[1] == "-dict":
		return writeDict(args[2], stdout, stderr)
	case len(args) > 1:
		fmt.Fprintf(stderr, "omail-pack: usage: omail-pack [-watch | -keygen | -dict [ID]]\n")
		return qexit.Usage
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

// keygen is omail-pack -keygen: control/ocmpkey is made once, never
// replaced (every peer listing its public key would refuse this home's
// bundles); run again, it prints the public key of the key there.
func keygen(env home.Env, stdout, stderr io.Writer) int {
	path := control.New(env.Dir()).File(ocmpkey.File)
	pub, made, err := ocmpkey.Generate(path)
	if err != nil {
		fmt.Fprintf(stderr, "omail-pack: %s: %v\n", path, err)
		return qexit.Temp
	}
	if made {
		fmt.Fprintf(stderr, "omail-pack: made the signing key %s; list this public key in the other side's control/ocmppeers\n", path)
	}
	fmt.Fprintln(stdout, ocmpkey.FormatPublic(pub))
	return qexit.OK
}

// writeDict is omail-pack -dict ID: the dictionary, byte for byte as
// embedded, on stdout.
func writeDict(arg string, stdout, stderr io.Writer) int {
	id, err := dict.Parse(arg)
	if err == nil && id == 0 {
		err = fmt.Errorf("%q is no dictionary", arg)
	}
	if err != nil {
		fmt.Fprintf(stderr, "omail-pack: -dict: %v\n", err)
		return qexit.Usage
	}
	b, _ := dict.Get(id)
	if _, err := stdout.Write(b); err != nil {
		fmt.Fprintf(stderr, "omail-pack: -dict: writing: %v\n", err)
		return qexit.Temp
	}
	return qexit.OK
}

// listDicts is omail-pack -dict: the ids of the dictionaries this omail
// has, one a line, the newest first.
func listDicts(stdout io.Writer) int {
	fmt.Fprintln(stdout, dict.Current)
	for _, id := range dict.IDs() {
		if id != dict.Current {
			fmt.Fprintln(stdout, id)
		}
	}
	return qexit.OK
}
