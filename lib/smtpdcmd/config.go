package smtpdcmd

import (
	"crypto/tls"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"omail/lib/control"
	"omail/lib/home"
	"omail/lib/qqclient"
	"omail/lib/relay"
	"omail/lib/smtpd"
)

// controlConfig is what omail-smtpd reads from control/: the same for
// every connection until a file changes. qmail-smtpd reads its control
// files for every connection; the resident server reads them again
// only when their stat says they changed (or on SIGHUP), and shares one
// controlConfig between the sessions meanwhile.
type controlConfig struct {
	hostname  string
	greeting  string
	dataBytes int64
	maxRcpt   int
	timeout   time.Duration
	tls       *tls.Config
	// certErr: servercert.pem is there but unusable. With tls nil,
	// no STARTTLS; with tls set, the certificate in use before was
	// kept (configCache.keepCert).
	certErr error
	rules   *relay.Rules

	stamp string // the files' stat when they were read
	refs  int    // sessions using it, under configCache.mu
	stale bool   // replaced: closed when the last session is done
}

// controlFiles are the files loadControl reads.
var controlFiles = append([]string{"me", "smtpgreeting", "databytes", "maxrcpt", "timeoutsmtpd", "servercert.pem"}, relay.Files...)

func loadControl(ctl *control.Dir) (*controlConfig, error) {
	cc := &controlConfig{}
	var err error
	if cc.hostname, err = ctl.Me(); err != nil {
		return nil, err
	}
	if cc.greeting, err = ctl.Line("smtpgreeting"); err != nil {
		return nil, err
	}
	if cc.dataBytes, err = ctl.Int("databytes"); err != nil {
		return nil, err
	}
	n, err := ctl.Int("maxrcpt")
	if err != nil {
		return nil, err
	}
	cc.maxRcpt = int(n)
	if n, err = ctl.Int("timeoutsmtpd"); err != nil {
		return nil, err
	}
	cc.timeout = time.Duration(n) * time.Second
	if ok, err := ctl.Exists("servercert.pem"); err != nil {
		return nil, err
	} else if ok {
		f := ctl.File("servercert.pem")
		if cert, err := tls.LoadX509KeyPair(f, f); err != nil {
			// Every session says why in the log until someone mends
			// the file (certNote).
			cc.certErr = fmt.Errorf("control file servercert.pem: %v", err)
		} else {
			cc.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		}
	}
	if cc.rules, err = relay.Load(ctl); err != nil {
		return nil, err
	}
	return cc, nil
}

// session makes one connection's smtpd.Config: the control files' part
// and what the environment (tcpserver's, tcprules', or the resident
// server's per connection) says.
func (cc *controlConfig) session(env home.Env, args []string, stderr io.Writer) (*smtpd.Config, error) {
	cfg := &smtpd.Config{
		Log:        stderr,
		RemoteIP:   remoteIP(env),
		RemoteHost: env.Get("TCPREMOTEHOST"),
		Hostname:   cc.hostname,
		Greeting:   cc.greeting,
		DataBytes:  cc.dataBytes,
		MaxRcpt:    cc.maxRcpt,
		Timeout:    cc.timeout,
		TLS:        cc.tls,
		Rules:      cc.rules,
	}
	if v := env.Get("DATABYTES"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("DATABYTES=%q is not a non-negative number", v)
		}
		cfg.DataBytes = n
	}
	if v, ok := env.Lookup("RELAYCLIENT"); ok {
		cfg.RelayClient = &v
	}
	if v := env.Get("AUTHREQUIRED"); v != "" && v != "0" {
		cfg.AuthRequired = true
	}
	if note := cc.certNote(); note != nil {
		if cc.tls == nil && cfg.AuthRequired {
			// AUTH is offered only after TLS: nobody could send.
			return nil, fmt.Errorf("%v, and AUTHREQUIRED needs it", note)
		}
		fmt.Fprintf(stderr, "omail-smtpd: %v\n", note)
	}
	// relayclients lines that are no address or network grant nothing;
	// every session's log says so until someone mends them.
	for _, err := range cc.rules.Refused() {
		fmt.Fprintf(stderr, "omail-smtpd: %v\n", err)
	}
	if len(args) > 0 {
		cfg.Auth = smtpd.Checkpassword(args, env, stderr, cfg.Timeout)
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

// certNote is what a session logs about servercert.pem, nil when the
// file is usable or absent.
func (cc *controlConfig) certNote() error {
	switch {
	case cc.certErr == nil:
		return nil
	case cc.tls != nil:
		return fmt.Errorf("%v: new certificate refused, keeping the certificate in use", cc.certErr)
	default:
		// Mail keeps flowing without STARTTLS; only a session that
		// needs TLS (AUTHREQUIRED, SMTPS) is refused.
		return fmt.Errorf("%v: STARTTLS not offered", cc.certErr)
	}
}

// configCache holds the current controlConfig.
type configCache struct {
	ctl *control.Dir
	mu  sync.Mutex
	cur *controlConfig
	// cert is the TLS config of the last config read, kept across
	// drop (SIGHUP) for keepCert.
	cert *tls.Config
}

// get returns the control files' config, read again if any of them
// changed since, for one session; release it when the session is done.
// The files are stat'ed before they are read, so a change made while
// they are being read is seen by the next connection.
func (c *configCache) get() (*controlConfig, error) {
	st := stamp(c.ctl)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil || c.cur.stamp != st {
		cc, err := loadControl(c.ctl)
		if err != nil {
			return nil, err
		}
		cc.stamp = st
		c.keepCert(cc)
		c.retire()
		c.cur = cc
	}
	c.cur.refs++
	return c.cur, nil
}

// keepCert: a servercert.pem that was replaced by one that cannot be
// used (garbage, a key that does not match its certificate, a file
// omail-smtpd cannot read) must not turn TLS off in a running server:
// STARTTLS would vanish from EHLO, mail would come in the clear, and
// SMTPS and AUTHREQUIRED sessions would all be refused. The certificate
// in use stays until a usable one replaces it, and every session logs
// that the new one was refused. A servercert.pem that is removed turns
// TLS off. Called with mu held.
func (c *configCache) keepCert(cc *controlConfig) {
	if cc.certErr != nil && cc.tls == nil {
		cc.tls = c.cert
	}
	c.cert = cc.tls
}

// release ends a session's use of cc.
func (c *configCache) release(cc *controlConfig) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cc.refs--
	if cc.stale && cc.refs == 0 {
		cc.rules.Close()
	}
}

// drop forgets the current config (SIGHUP): the next get reads the
// files whether or not their stat changed.
func (c *configCache) drop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.retire()
}

// retire marks the current config replaced, closing its files once no
// session uses it. Called with mu held.
func (c *configCache) retire() {
	if c.cur == nil {
		return
	}
	c.cur.stale = true
	if c.cur.refs == 0 {
		c.cur.rules.Close()
	}
	c.cur = nil
}

// timeout is timeoutsmtpd as last read.
func (c *configCache) timeout() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil {
		return 0
	}
	return c.cur.timeout
}

// unreadable makes every stamp of an unreadable file a new one.
var unreadable atomic.Uint64

// stamp is the control files' identity and times: inode, size, mtime
// and ctime in nanoseconds, "-" for a missing file. An edit, a rename
// over the file (tcprules, omail-smtpd -cdb) or a chmod changes it.
// A dozen stat calls per connection, against reading and parsing the
// files (and the certificate's key) each time.
func stamp(ctl *control.Dir) string {
	var b strings.Builder
	for _, name := range controlFiles {
		b.WriteString(name)
		var st syscall.Stat_t
		if err := syscall.Stat(ctl.File(name), &st); err != nil {
			if os.IsNotExist(err) {
				b.WriteString(":-;")
			} else {
				// Unreadable now: read again next time, and let the
				// reading report the error.
				fmt.Fprintf(&b, ":%v;%d", err, unreadable.Add(1))
			}
			continue
		}
		fmt.Fprintf(&b, ":%d,%d,%d,%d,%d;", st.Ino, st.Dev, st.Size, st.Mtim.Nano(), st.Ctim.Nano())
	}
	return b.String()
}
