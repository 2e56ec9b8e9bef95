// Package smtpdcmd is the body of omail-smtpd: it reads the control
// files and the environment tcpserver (or inetd, systemd, omail-inject
// -bs) gives it, and serves one SMTP connection on stdin/stdout.
package smtpdcmd

import (
	"crypto/tls"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"omail/lib/control"
	"omail/lib/home"
	"omail/lib/qqclient"
	"omail/lib/relay"
	"omail/lib/safefile"
	"omail/lib/smtpd"
	"omail/lib/stdioconn"
)

// Exit codes.
const (
	exitOK   = 0
	exitPerm = 100 // bad usage
	exitTemp = 111 // cannot start: control files, certificate
)

// Run is omail-smtpd's main. Arguments, if any, are a checkpassword
// program and its arguments, for SMTP AUTH; "-cdb" instead rebuilds the
// control cdb files.
func Run(args []string, env home.Env, stdin io.Reader, stdout, stderr io.Writer) int {
	args = args[1:]
	ctl := control.New(env.Dir())
	if len(args) > 0 && args[0] == "-cdb" {
		return rebuild(ctl, args[1:], stdout, stderr)
	}
	if len(args) > 0 && strings.HasPrefix(args[0], "-") {
		fmt.Fprintf(stderr, "omail-smtpd: unknown option %s; usage: omail-smtpd [checkpassword prog...] | omail-smtpd -cdb\n", args[0])
		return exitPerm
	}
	// A client that goes away makes writes fail with EPIPE; it must not
	// kill us with SIGPIPE while a queue program may still be running.
	signal.Ignore(syscall.SIGPIPE)

	// inetd gives the connection as fds 0, 1 and 2 alike: log lines on
	// fd 2 would then go to the client, into the SMTP dialogue. Never.
	if sameFile(stderr, stdin) || sameFile(stderr, stdout) {
		stderr = io.Discard
	}
	conn := stdioconn.New(stdin, stdout, env.Get("TCPLOCALIP"), remoteIP(env))
	cfg, err := loadConfig(ctl, env, args, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "omail-smtpd: %v\n", err)
		fmt.Fprintf(conn, "421 4.3.0 temporary configuration problem, try again later\r\n")
		conn.Close()
		return exitTemp
	}
	defer cfg.Rules.Close()
	smtpd.Serve(conn, cfg)
	return exitOK
}

func loadConfig(ctl *control.Dir, env home.Env, args []string, stderr io.Writer) (*smtpd.Config, error) {
	cfg := &smtpd.Config{
		Log:        stderr,
		RemoteIP:   remoteIP(env),
		RemoteHost: env.Get("TCPREMOTEHOST"),
	}
	var err error
	if cfg.Hostname, err = ctl.Me(); err != nil {
		return nil, err
	}
	if cfg.Greeting, err = ctl.Line("smtpgreeting"); err != nil {
		return nil, err
	}
	if cfg.DataBytes, err = ctl.Int("databytes"); err != nil {
		return nil, err
	}
	if v := env.Get("DATABYTES"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("DATABYTES=%q is not a non-negative number", v)
		}
		cfg.DataBytes = n
	}
	n, err := ctl.Int("maxrcpt")
	if err != nil {
		return nil, err
	}
	cfg.MaxRcpt = int(n)
	if n, err = ctl.Int("timeoutsmtpd"); err != nil {
		return nil, err
	}
	cfg.Timeout = time.Duration(n) * time.Second
	if v, ok := env.Lookup("RELAYCLIENT"); ok {
		cfg.RelayClient = &v
	}
	if v := env.Get("AUTHREQUIRED"); v != "" && v != "0" {
		cfg.AuthRequired = true
	}
	if ok, err := ctl.Exists("servercert.pem"); err != nil {
		return nil, err
	} else if ok {
		f := ctl.File("servercert.pem")
		cert, err := tls.LoadX509KeyPair(f, f)
		if err != nil {
			return nil, fmt.Errorf("control file servercert.pem: %v", err)
		}
		cfg.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if len(args) > 0 {
		cfg.Auth = smtpd.Checkpassword(args, env, stderr, cfg.Timeout)
	}
	if cfg.Rules, err = relay.Load(ctl); err != nil {
		return nil, err
	}
	cfg.Queue = func() (smtpd.Sink, error) {
		c, err := qqclient.Open(env, stderr)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
	return cfg, nil
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
		return exitPerm
	}
	done, err := relay.Rebuild(ctl)
	for _, d := range done {
		fmt.Fprintf(stdout, "omail-smtpd: wrote %s\n", ctl.File(d))
	}
	if err != nil {
		fmt.Fprintf(stderr, "omail-smtpd: %v\n", err)
		return exitTemp
	}
	ok, err := ctl.Exists("tcp.smtp")
	if err != nil {
		fmt.Fprintf(stderr, "omail-smtpd: %v\n", err)
		return exitTemp
	}
	if ok {
		if err := tcprules(ctl, stderr); err != nil {
			fmt.Fprintf(stderr, "omail-smtpd: tcp.smtp: %v\n", err)
			return exitTemp
		}
		fmt.Fprintf(stdout, "omail-smtpd: wrote %s\n", ctl.File("tcp.smtp.cdb"))
	}
	return exitOK
}

// tcprules compiles control/tcp.smtp with ucspi-tcp's tcprules.
func tcprules(ctl *control.Dir, stderr io.Writer) error {
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
