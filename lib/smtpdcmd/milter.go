package smtpdcmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	gomilter "github.com/d--j/go-milter"

	"omail/lib/control"
	"omail/lib/home"
	"omail/lib/milter"
	"omail/lib/privdrop"
	"omail/lib/qexit"
	"omail/lib/qmanager"
	"omail/lib/qqclient"
)

// milterOptions are -milter's arguments: [ADDR] [-u USER].
type milterOptions struct {
	addr string // "" for control/milterport
	user string
}

func parseMilterOptions(args []string) (milterOptions, error) {
	var o milterOptions
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-u":
			if i+1 >= len(args) || args[i+1] == "" {
				return o, errors.New("option -u needs a value")
			}
			o.user = args[i+1]
			i++
		case i == 0 && !strings.HasPrefix(a, "-"):
			o.addr = a
		default:
			return o, fmt.Errorf("unexpected argument %q", a)
		}
	}
	return o, nil
}

// milterAddr is the address to listen on: the argument, else
// control/milterport, else the original's inet:9801@127.0.0.1.
func milterAddr(ctl *control.Dir, arg string) (milter.Addr, error) {
	if arg != "" {
		return milter.ParseAddr(arg)
	}
	v, err := ctl.Line("milterport")
	if err != nil {
		return milter.Addr{}, err
	}
	if v == "" {
		v = milter.DefaultAddr
	}
	a, err := milter.ParseAddr(v)
	if err != nil {
		return a, &control.Error{File: "milterport", Err: err}
	}
	return a, nil
}

// runMilter is omail-smtpd -milter [ADDR] [-u USER]: bind, drop to
// USER, check the control files, then serve MTA connections until
// SIGTERM. Exit 100 for bad arguments, 111 when it cannot bind or read
// its configuration, 0 after SIGTERM.
func runMilter(ctl *control.Dir, args []string, env home.Env, stderr io.Writer) int {
	o, err := parseMilterOptions(args)
	if err != nil {
		fmt.Fprintf(stderr, "omail-smtpd: -milter: %v; %s\n", err, usage)
		return qexit.Usage
	}
	addr, err := milterAddr(ctl, o.addr)
	if err != nil {
		fmt.Fprintf(stderr, "omail-smtpd: -milter: %v\n", err)
		if o.addr != "" {
			return qexit.Usage
		}
		return qexit.Temp
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)

	ids, code := serveAs(o.user, stderr)
	if code != qexit.OK {
		return code
	}
	l, err := milter.Listen(addr)
	if err != nil {
		fmt.Fprintf(stderr, "omail-smtpd: -milter: cannot listen: %v\n", err)
		return qexit.Temp
	}
	defer l.Close()
	if o.user != "" {
		// The socket file is the served user's; who may connect to it
		// is up to its directory's permissions.
		if addr.Network == "unix" {
			if err := os.Chown(addr.Address, ids.UID, ids.GID); err != nil {
				fmt.Fprintf(stderr, "omail-smtpd: -milter: %v\n", err)
				return qexit.Temp
			}
		}
		if err := privdrop.Drop(ids); err != nil {
			fmt.Fprintf(stderr, "omail-smtpd: -u %s: %v\n", o.user, err)
			return qexit.Temp
		}
	}
	// The configuration is read per message; read it once now so that
	// a broken file stops the start rather than every message.
	if _, err := qmanager.NewRouter(ctl); err != nil {
		fmt.Fprintf(stderr, "omail-smtpd: -milter: %v\n", err)
		return qexit.Temp
	}
	timeout, err := ctl.Int("timeoutsmtpd")
	if err != nil {
		fmt.Fprintf(stderr, "omail-smtpd: -milter: %v\n", err)
		return qexit.Temp
	}
	gomilter.LogWarning = func(format string, v ...any) {
		fmt.Fprintf(stderr, "omail-smtpd: milter: %s\n", fmt.Sprintf(format, v...))
	}
	cfg := &milter.Config{
		Ctl: ctl,
		Queue: func() (milter.Sink, error) {
			return qqclient.Open(env, stderr)
		},
		Log: stderr,
	}
	srv := milter.NewServer(cfg, time.Duration(timeout)*time.Second)
	fmt.Fprintf(stderr, "omail-smtpd: milter listening on %s\n", listenName(addr, l))

	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	for {
		select {
		case err := <-served:
			fmt.Fprintf(stderr, "omail-smtpd: milter: %v\n", err)
			return qexit.Temp
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				fmt.Fprintf(stderr, "omail-smtpd: milter: SIGHUP: control files are read for every message; nothing to reload\n")
				continue
			}
			// Messages in progress end (the MTA applies its
			// milter_default_action to those not finished in time).
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			srv.Shutdown(ctx)
			cancel()
			fmt.Fprintf(stderr, "omail-smtpd: milter stopped\n")
			return qexit.OK
		}
	}
}

// listenName is the address as Postfix's smtpd_milters and sendmail's
// S= want it (the port filled in when it was 0).
func listenName(a milter.Addr, l net.Listener) string {
	t, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		return "unix:" + a.Address
	}
	if t.IP.To4() != nil {
		return fmt.Sprintf("inet:%d@%s", t.Port, t.IP)
	}
	return fmt.Sprintf("inet6:%d@[%s]", t.Port, t.IP)
}
