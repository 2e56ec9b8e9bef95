// Package smtpdcmd is the body of omail-smtpd: it reads the control
// files and the environment tcpserver (or inetd, systemd, omail-inject
// -bs) gives it, and serves one SMTP connection on stdin/stdout; or,
// resident (-listen, or sockets from systemd), serves every connection
// itself, with the same session code (resident.go).
package smtpdcmd

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"omail/lib/control"
	"omail/lib/home"
	"omail/lib/qexit"
	"omail/lib/relay"
	"omail/lib/safefile"
	"omail/lib/sdlisten"
	"omail/lib/smtpd"
	"omail/lib/stdioconn"
)

const usage = "usage: omail-smtpd [checkpassword prog...] | omail-smtpd -listen [IP:]PORT [-tls] [-listen ...] [-x rules.cdb] [-c N] [-u USER] [checkpassword prog...] | omail-smtpd -milter [ADDR] [-u USER] | omail-smtpd -drac IP | omail-smtpd -cdb"

// Run is omail-smtpd's main. Arguments, if any, are a checkpassword
// program and its arguments, for SMTP AUTH; "-cdb" instead rebuilds the
// control cdb files; -listen and its options run the resident server;
// -milter runs the milter server for another MTA (milter.go); -drac
// records a POP/IMAP login (drac.go).
func Run(args []string, env home.Env, stdin io.Reader, stdout, stderr io.Writer) int {
	args = args[1:]
	ctl := control.New(env.Dir())
	if len(args) > 0 && args[0] == "-cdb" {
		return rebuild(ctl, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "-drac" {
		return runDrac(ctl, args[1:], time.Now(), stderr)
	}
	// A client that goes away makes writes fail with EPIPE; it must not
	// kill us with SIGPIPE while a queue program may still be running.
	signal.Ignore(syscall.SIGPIPE)
	if len(args) > 0 && args[0] == "-milter" {
		return runMilter(ctl, args[1:], env, stderr)
	}
	if len(args) > 0 && strings.HasPrefix(args[0], "-") || systemdListening(env) {
		return runResident(ctl, args, env, stderr)
	}

	// systemd Accept=yes: the connection came as fd 3 too, with
	// LISTEN_FDS and LISTEN_PID. Both are for us only: a queue or
	// checkpassword program must not hold the client's connection open
	// after the session, nor take the variables as its own.
	if n, _, err := sdlisten.Parse(env.Get, os.Getpid()); err == nil && n > 0 {
		sdlisten.CloseOnExec(n)
	}
	env = without(env, sdlisten.Vars)

	// inetd gives the connection as fds 0, 1 and 2 alike: log lines on
	// fd 2 would then go to the client, into the SMTP dialogue. Never.
	if sameFile(stderr, stdin) || sameFile(stderr, stdout) {
		stderr = io.Discard
	}
	conn := stdioconn.New(stdin, stdout, env.Get("TCPLOCALIP"), remoteIP(env))
	sv := &server{cache: configCache{ctl: ctl}, args: args, log: stderr}
	// SMTPS=1: tcpserver (or inetd, systemd) on port 465, TLS first.
	return sv.session(conn, env, env.Get("SMTPS") == "1")
}

// server is what the two modes share: the control files, the
// checkpassword program, the log.
type server struct {
	cache configCache
	args  []string // checkpassword program and arguments
	log   io.Writer
}

// session serves one connection, in the environment of that
// connection, and closes it.
func (sv *server) session(conn net.Conn, env home.Env, implicitTLS bool) int {
	cc, err := sv.cache.get()
	var cfg *smtpd.Config
	if err == nil {
		defer sv.cache.release(cc)
		cfg, err = cc.session(env, sv.args, sv.log)
	}
	if err == nil && implicitTLS && cfg.TLS == nil {
		err = errors.New("implicit TLS (SMTPS) needs a usable control/servercert.pem")
	}
	if err != nil {
		fmt.Fprintf(sv.log, "omail-smtpd: %v\n", err)
		if !implicitTLS {
			// (On SMTPS a reply in the clear would only confuse the
			// client's TLS handshake: closing says enough.)
			fmt.Fprintf(conn, "421 4.3.0 temporary configuration problem, try again later\r\n")
		}
		conn.Close()
		return qexit.Temp
	}
	cfg.ImplicitTLS = implicitTLS
	smtpd.Serve(conn, cfg)
	return qexit.OK
}

// remoteIP is $TCPREMOTEIP, as an IPv4 address when it is one mapped
// into IPv6 (a dual-stack listener, systemd's REMOTE_ADDR), so that
// relayclients prefixes like "192.168.1." match.
func remoteIP(env home.Env) string {
	ip := env.Get("TCPREMOTEIP")
	if v4, ok := strings.CutPrefix(strings.ToLower(ip), "::ffff:"); ok && strings.Contains(v4, ".") {
		return v4
	}
	return ip
}

// rebuild is omail-smtpd -cdb: every control cdb from its source file,
// and control/tcp.smtp.cdb from control/tcp.smtp by tcprules (which
// writes tcp.smtp.tmp and renames it), so one command does it all.
func rebuild(ctl *control.Dir, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintln(stderr, "omail-smtpd: usage: omail-smtpd -cdb")
		return qexit.Usage
	}
	done, err := relay.Rebuild(ctl)
	for _, d := range done {
		fmt.Fprintf(stdout, "omail-smtpd: wrote %s\n", ctl.File(d))
	}
	if err != nil {
		fmt.Fprintf(stderr, "omail-smtpd: %v\n", err)
		return qexit.Temp
	}
	ok, err := ctl.Exists("tcp.smtp")
	if err != nil {
		fmt.Fprintf(stderr, "omail-smtpd: %v\n", err)
		return qexit.Temp
	}
	if ok {
		if err := compileRules(ctl, stderr); err != nil {
			fmt.Fprintf(stderr, "omail-smtpd: tcp.smtp: %v\n", err)
			return qexit.Temp
		}
		fmt.Fprintf(stdout, "omail-smtpd: wrote %s\n", ctl.File("tcp.smtp.cdb"))
	}
	return qexit.OK
}

// compileRules compiles control/tcp.smtp with ucspi-tcp's tcprules.
func compileRules(ctl *control.Dir, stderr io.Writer) error {
	src, err := os.Open(ctl.File("tcp.smtp"))
	if err != nil {
		return err
	}
	defer src.Close()
	cmd := exec.Command("tcprules", ctl.File("tcp.smtp.cdb"), ctl.File("tcp.smtp.tmp"))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = src, stderr, stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("tcprules: %v", err)
	}
	// tcprules renames but does not fsync the directory.
	return safefile.SyncDir(ctl.Path)
}

// sameFile reports whether two of our standard streams are one open file
// (one socket), by device and inode.
func sameFile(a, b any) bool {
	fa, ok1 := a.(*os.File)
	fb, ok2 := b.(*os.File)
	if !ok1 || !ok2 {
		return false
	}
	sa, err1 := fa.Stat()
	sb, err2 := fb.Stat()
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}
