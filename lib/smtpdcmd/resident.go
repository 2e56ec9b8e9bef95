package smtpdcmd

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"omail/lib/cdbfile"
	"omail/lib/control"
	"omail/lib/home"
	"omail/lib/privdrop"
	"omail/lib/qexit"
	"omail/lib/resident"
	"omail/lib/sdlisten"
	"omail/lib/tcprules"
)

// defaultConcurrency is tcpserver's default -c.
const defaultConcurrency = 40

// options are the resident server's arguments.
type options struct {
	listen []listenSpec
	// tlsAll: -tls given before any -listen, with sockets from systemd:
	// every one of them is implicit TLS.
	tlsAll bool
	rules  string // -x
	max    int    // -c
	user   string // -u
	args   []string
}

type listenSpec struct {
	addr string // host:port for net.Listen
	tls  bool
}

// parseOptions reads -listen ADDR [-tls], -x FILE, -c N, -u USER in any
// order, then the checkpassword program and its arguments (after "--",
// or from the first argument that is not an option). -tls marks the
// -listen just before it as implicit TLS; with no -listen (sockets from
// systemd) it marks them all.
func parseOptions(args []string) (options, error) {
	o := options{max: defaultConcurrency}
	value := func(i int) (string, error) {
		if i+1 >= len(args) || args[i+1] == "" {
			return "", fmt.Errorf("option %s needs a value", args[i])
		}
		return args[i+1], nil
	}
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			i++
			break
		}
		if !strings.HasPrefix(a, "-") {
			break
		}
		switch a {
		case "-tls":
			if len(o.listen) == 0 {
				o.tlsAll = true
			} else {
				o.listen[len(o.listen)-1].tls = true
			}
			continue
		case "-listen", "-x", "-c", "-u":
		default:
			return o, fmt.Errorf("unknown option %s", a)
		}
		v, err := value(i)
		if err != nil {
			return o, err
		}
		i++
		switch a {
		case "-listen":
			addr, err := parseListen(v)
			if err != nil {
				return o, err
			}
			o.listen = append(o.listen, listenSpec{addr: addr})
		case "-x":
			o.rules = v
		case "-c":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return o, fmt.Errorf("-c %q: want a number of sessions, at least 1", v)
			}
			o.max = n
		case "-u":
			o.user = v
		}
	}
	if o.tlsAll && len(o.listen) > 0 {
		return o, errors.New("-tls before the first -listen: put it after the -listen it is for")
	}
	o.args = args[i:]
	return o, nil
}

// parseListen reads [IP:]PORT, [IPv6]:PORT. Only an IP address: a host
// name would need DNS, which omail-smtpd never asks.
func parseListen(s string) (string, error) {
	host, port := "", s
	if strings.Contains(s, ":") {
		var err error
		if host, port, err = net.SplitHostPort(s); err != nil {
			return "", fmt.Errorf("-listen %q: want [IP:]PORT or [IPv6]:PORT", s)
		}
		if net.ParseIP(host) == nil {
			return "", fmt.Errorf("-listen %q: %q is not an IP address", s, host)
		}
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return "", fmt.Errorf("-listen %q: bad port %q", s, port)
	}
	return net.JoinHostPort(host, port), nil
}

// systemdListening reports whether systemd passed listening sockets
// for us (Accept=no). With Accept=yes it passes one connected socket
// the same way, which is served on stdin/stdout as before.
func systemdListening(env home.Env) bool {
	n, _, err := sdlisten.Parse(env.Get, os.Getpid())
	return err == nil && n > 0 && sdlisten.Listening(3)
}

// runResident is omail-smtpd -listen, or with sockets from systemd:
// bind, drop privileges, read the configuration (exit 111 if any of it
// fails), then serve every connection in a goroutine until SIGTERM.
func runResident(ctl *control.Dir, args []string, env home.Env, stderr io.Writer) int {
	o, err := parseOptions(args)
	if err != nil {
		fmt.Fprintf(stderr, "omail-smtpd: %v; %s\n", err, usage)
		return qexit.Usage
	}
	// From here on SIGTERM and SIGHUP wait for the server to be up
	// rather than kill it half started.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	nfds, names, err := sdlisten.Parse(env.Get, os.Getpid())
	if err != nil {
		fmt.Fprintf(stderr, "omail-smtpd: %v\n", err)
		return qexit.Temp
	}
	if len(o.listen) == 0 && nfds == 0 {
		fmt.Fprintf(stderr, "omail-smtpd: no -listen and no sockets from systemd (LISTEN_FDS); %s\n", usage)
		return qexit.Usage
	}
	// Never serve as root: refuse before binding anything.
	ids, code := serveAs(o.user, stderr)
	if code != qexit.OK {
		return code
	}

	ls, err := openListeners(o, nfds, names)
	if err != nil {
		fmt.Fprintf(stderr, "omail-smtpd: %v\n", err)
		return qexit.Temp
	}
	closeAll := func() {
		for _, l := range ls {
			l.Close()
		}
	}
	if o.user != "" {
		if err := privdrop.Drop(ids); err != nil {
			closeAll()
			fmt.Fprintf(stderr, "omail-smtpd: -u %s: %v\n", o.user, err)
			return qexit.Temp
		}
	}

	d := &daemon{
		server: server{cache: configCache{ctl: ctl}, args: o.args, log: stderr},
		base:   connBase(env),
		rules:  o.rules,
	}
	if err := d.check(ls); err != nil {
		closeAll()
		fmt.Fprintf(stderr, "omail-smtpd: %v\n", err)
		return qexit.Temp
	}
	for _, l := range ls {
		tls := ""
		if l.TLS {
			tls = " (implicit TLS)"
		}
		fmt.Fprintf(stderr, "omail-smtpd: listening on %s%s, at most %d sessions\n", l.Addr(), tls, o.max)
	}

	stop := make(chan struct{})
	go func() {
		for sig := range sigs {
			if sig == syscall.SIGHUP {
				d.reload()
				continue
			}
			close(stop)
			return
		}
	}()
	srv := &resident.Server{Listeners: ls, Max: o.max, Serve: d.serve, Log: stderr, Name: "omail-smtpd", Grace: d.grace}
	srv.Run(stop)
	fmt.Fprintf(stderr, "omail-smtpd: stopped\n")
	return qexit.OK
}

// serveAs looks up -u USER before anything is bound: the ids to drop
// to, or, with no -u, a refusal to serve as root. The code is qexit.OK,
// or the exit code: 100 for root (restarting cannot fix it), 111 for a
// user that cannot be found now.
func serveAs(user string, stderr io.Writer) (privdrop.IDs, int) {
	if user == "" {
		if os.Geteuid() == 0 || os.Getegid() == 0 {
			fmt.Fprintf(stderr, "omail-smtpd: running as root: give -u USER, the user to serve as\n")
			return privdrop.IDs{}, qexit.Usage
		}
		return privdrop.IDs{}, qexit.OK
	}
	ids, err := privdrop.Lookup(user)
	if err != nil {
		fmt.Fprintf(stderr, "omail-smtpd: -u %s: %v\n", user, err)
		if errors.Is(err, privdrop.ErrRoot) {
			return ids, qexit.Usage
		}
		return ids, qexit.Temp
	}
	return ids, qexit.OK
}

// openListeners binds the -listen addresses, or takes the n sockets
// systemd passed.
func openListeners(o options, n int, names []string) ([]resident.Listener, error) {
	var ls []resident.Listener
	if len(o.listen) == 0 {
		socks, err := sdlisten.Listeners(n, names)
		if err != nil {
			return nil, err
		}
		for _, s := range socks {
			// FileDescriptorName=smtps in the socket unit, or -tls.
			ls = append(ls, resident.Listener{Listener: s.Listener, TLS: o.tlsAll || s.Name == "smtps"})
		}
		return ls, nil
	}
	for _, spec := range o.listen {
		l, err := net.Listen("tcp", spec.addr)
		if err != nil {
			for _, x := range ls {
				x.Close()
			}
			return nil, fmt.Errorf("cannot listen: %v", err)
		}
		ls = append(ls, resident.Listener{Listener: l, TLS: spec.tls})
	}
	return ls, nil
}

// daemon is the resident server's per-connection part.
type daemon struct {
	server
	base  []string // the environment every connection starts from
	rules string   // -x: tcprules cdb, "" for none
}

// check reads the configuration once at start: the control files, the
// certificate an implicit-TLS listener needs, the rules file.
func (d *daemon) check(ls []resident.Listener) error {
	cc, err := d.cache.get()
	if err != nil {
		return err
	}
	defer d.cache.release(cc)
	for _, l := range ls {
		if l.TLS && cc.tls == nil {
			return fmt.Errorf("implicit TLS on %s needs control/servercert.pem", l.Addr())
		}
	}
	if d.rules != "" {
		db, err := cdbfile.Open(d.rules)
		if err != nil {
			return fmt.Errorf("-x: %v", err)
		}
		db.Close()
	}
	return nil
}

// reload is SIGHUP: the control files and the certificate are read now,
// whether or not they look changed, for the connections from now on.
// A servercert.pem that cannot be used is a failed reload: the
// certificate in use, if any, is kept (configCache.keepCert).
func (d *daemon) reload() {
	d.cache.drop()
	cc, err := d.cache.get()
	if err != nil {
		fmt.Fprintf(d.log, "omail-smtpd: SIGHUP: %v; connections get 421 until it is fixed\n", err)
		return
	}
	note := cc.certNote()
	d.cache.release(cc)
	if note != nil {
		fmt.Fprintf(d.log, "omail-smtpd: SIGHUP: reload failed: %v; the other control files are reloaded\n", note)
		return
	}
	fmt.Fprintf(d.log, "omail-smtpd: SIGHUP: control files and certificate reloaded\n")
}

// grace is how long sessions may take to finish after SIGTERM:
// timeoutsmtpd, the longest a session may sit idle anyway.
func (d *daemon) grace() time.Duration {
	if t := d.cache.timeout(); t > 0 {
		return t
	}
	return 1200 * time.Second
}

// serve is one connection: the environment tcpserver -RHl0 would give
// it, the rules, then the session.
func (d *daemon) serve(c net.Conn, implicitTLS bool) {
	env := connEnv(d.base, c.LocalAddr(), c.RemoteAddr())
	if d.rules != "" {
		ip := addrIP(c.RemoteAddr())
		v, err := tcprules.Lookup(d.rules, ip)
		if err != nil {
			// tcpserver drops the connection when it cannot read its
			// rules: never serve without them.
			fmt.Fprintf(d.log, "omail-smtpd: %s dropped: cannot read rules %s: %v\n", ip, d.rules, err)
			c.Close()
			return
		}
		if v.Deny {
			fmt.Fprintf(d.log, "omail-smtpd: %s denied by rule %q of %s\n", ip, v.Key, d.rules)
			c.Close()
			return
		}
		env = append(env, v.Env...)
	}
	d.session(c, env, implicitTLS)
}

// connVars are what tcpserver sets or unsets for each connection, and
// the socket-activation variables, meant for us and no child: none of
// them is taken from our own environment.
var connVars = append([]string{"PROTO", "TCPLOCALIP", "TCPLOCALPORT", "TCPLOCALHOST",
	"TCPREMOTEIP", "TCPREMOTEPORT", "TCPREMOTEHOST", "TCPREMOTEINFO", "SMTPS"}, sdlisten.Vars...)

// connBase is our environment without connVars.
func connBase(env home.Env) []string { return without(env, connVars) }

// without is env without the variables named, a new slice.
func without(env home.Env, names []string) home.Env {
	var out home.Env
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(names, k) {
			out = append(out, kv)
		}
	}
	return out
}

// connEnv is one connection's environment, a new slice: what tcpserver
// -RHl0 sets (TCPLOCALHOST is -l0's "0"; -H and -R leave TCPREMOTEHOST
// and TCPREMOTEINFO unset). Nothing is ever set in the process's own
// environment, which every connection shares.
func connEnv(base []string, local, remote net.Addr) home.Env {
	env := make(home.Env, len(base), len(base)+8)
	copy(env, base)
	return append(env, "PROTO=TCP",
		"TCPLOCALIP="+addrIP(local), "TCPLOCALPORT="+addrPort(local), "TCPLOCALHOST=0",
		"TCPREMOTEIP="+addrIP(remote), "TCPREMOTEPORT="+addrPort(remote))
}

// addrIP is a TCP address's IP as tcpserver writes it: dotted quad for
// IPv4, also when it arrived mapped into IPv6 on a dual-stack socket.
func addrIP(a net.Addr) string {
	t, ok := a.(*net.TCPAddr)
	if !ok {
		return ""
	}
	if v4 := t.IP.To4(); v4 != nil {
		return v4.String()
	}
	return t.IP.String()
}

func addrPort(a net.Addr) string {
	t, ok := a.(*net.TCPAddr)
	if !ok {
		return ""
	}
	return strconv.Itoa(t.Port)
}
