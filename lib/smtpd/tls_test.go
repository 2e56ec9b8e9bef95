package smtpd

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"io"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"
)

func testTLS(t testing.TB) *tls.Config {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mx.us.example"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"mx.us.example"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

// client is the other end of an interactive session.
type client struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
	done chan struct{}
}

func dial(t *testing.T, cfg *Config) *client {
	a, b := net.Pipe()
	c := &client{t: t, conn: a, r: bufio.NewReader(a), done: make(chan struct{})}
	go func() { Serve(b, cfg); close(c.done) }()
	t.Cleanup(func() { a.Close(); <-c.done })
	c.expect("220")
	return c
}

// expect reads one reply and fails unless its code is code. It returns
// the reply's lines.
func (c *client) expect(code string) []string {
	c.t.Helper()
	var out []string
	for {
		l, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("reading reply (want %s): %v after %q", code, err, out)
		}
		out = append(out, l)
		if len(l) < 4 || l[3] != '-' {
			break
		}
	}
	if !strings.HasPrefix(out[len(out)-1], code+" ") {
		c.t.Fatalf("reply %q, want %s", out, code)
	}
	return out
}

func (c *client) send(l string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, l+"\r\n"); err != nil {
		c.t.Fatalf("sending %q: %v", l, err)
	}
}

func (c *client) cmd(l, code string) []string {
	c.t.Helper()
	c.send(l)
	return c.expect(code)
}

func (c *client) startTLS() {
	c.t.Helper()
	c.cmd("STARTTLS", "220")
	tc := tls.Client(c.conn, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		c.t.Fatal(err)
	}
	c.conn, c.r = tc, bufio.NewReader(tc)
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func authConfig(t *testing.T, q *memQueue) *Config {
	cfg := testConfig(t, q, nil)
	cfg.TLS = testTLS(t)
	cfg.Auth = func(u, p string) AuthResult {
		switch {
		case u == "joe" && p == "secret":
			return AuthOK
		case u == "temp":
			return AuthTemp
		}
		return AuthFail
	}
	return cfg
}

func TestSTARTTLSAndAuth(t *testing.T) {
	q := &memQueue{}
	c := dial(t, authConfig(t, q))
	ehlo := strings.Join(c.cmd("EHLO x", "250"), "")
	if !strings.Contains(ehlo, "STARTTLS") || strings.Contains(ehlo, "AUTH") {
		t.Errorf("EHLO before TLS: %s", ehlo)
	}
	c.cmd("AUTH PLAIN "+b64("\x00joe\x00secret"), "538")
	c.startTLS()
	c.cmd("MAIL FROM:<a@b>", "250") // HELO is not required, as in qmail
	c.cmd("RSET", "250")
	ehlo = strings.Join(c.cmd("EHLO x", "250"), "")
	if strings.Contains(ehlo, "STARTTLS") || !strings.Contains(ehlo, "AUTH PLAIN LOGIN") {
		t.Errorf("EHLO after TLS: %s", ehlo)
	}
	c.cmd("MAIL FROM:<a@b>", "250")
	c.cmd("RCPT TO:<u@far.example>", "553")
	c.cmd("AUTH PLAIN "+b64("\x00joe\x00secret"), "503") // not inside a transaction
	c.cmd("RSET", "250")
	c.cmd("AUTH PLAIN "+b64("\x00temp\x00x"), "454")
	c.cmd("AUTH PLAIN "+b64("\x00temp\x00"+strings.Repeat("x", 2000)), "454") // long initial response
	c.cmd("NOOP "+strings.Repeat("x", 2000), "500")
	c.cmd("AUTH PLAIN", "334")
	c.cmd(b64("\x00joe\x00secret"), "235")
	c.cmd("AUTH PLAIN "+b64("\x00joe\x00secret"), "503")
	c.relayAsJoe(q)
}

// relayAsJoe sends one message to a foreign domain, which only AUTH
// allows, and checks it was queued as sent with TLS and AUTH.
func (c *client) relayAsJoe(q *memQueue) {
	c.t.Helper()
	c.cmd("MAIL FROM:<joe@us.example>", "250")
	c.cmd("RCPT TO:<u@far.example>", "250")
	c.cmd("DATA", "354")
	c.send("hi")
	c.cmd(".", "250")
	c.cmd("QUIT", "221")
	if len(q.msgs) != 1 || !strings.Contains(q.msgs[0].msg, "with ESMTPSA id") {
		c.t.Fatalf("queued %+v", q.msgs)
	}
}

func TestAuthLogin(t *testing.T) {
	c := dial(t, authConfig(t, &memQueue{}))
	c.startTLS()
	c.cmd("EHLO x", "250")
	if got := c.cmd("AUTH LOGIN", "334"); got[0] != "334 "+b64("Username:")+"\r\n" {
		t.Errorf("challenge %q", got)
	}
	c.cmd(b64("joe"), "334")
	c.cmd(b64("secret"), "235")
	c2 := dial(t, authConfig(t, &memQueue{}))
	c2.startTLS()
	c2.cmd("AUTH LOGIN "+b64("joe"), "334")
	c2.cmd("*", "501")
	c2.cmd("AUTH LOGIN "+b64("joe"), "334")
	c2.cmd(b64("secret"), "235")
}

func TestAuthGuessingHangsUp(t *testing.T) {
	c := dial(t, authConfig(t, &memQueue{}))
	c.startTLS()
	c.cmd("EHLO x", "250")
	c.cmd("AUTH PLAIN "+b64("\x00joe\x00a"), "535")
	c.cmd("AUTH PLAIN "+b64("\x00joe\x00b"), "535")
	c.cmd("AUTH PLAIN "+b64("\x00joe\x00c"), "421")
	if l, err := c.r.ReadString('\n'); err == nil {
		t.Errorf("connection still open after 3 failures: %q", l)
	}
}

func TestTimeout(t *testing.T) {
	cfg := testConfig(t, &memQueue{}, nil)
	cfg.Timeout = 20 * time.Millisecond
	c := dial(t, cfg)
	// Waiting for the server's reply, not sleeping: it has to give up.
	c.expect("421")
	if _, err := c.r.ReadString('\n'); err == nil {
		t.Error("connection still open after the timeout")
	}
}

// dialTLS is dial for an implicit-TLS (SMTPS) session: the handshake
// comes before the greeting.
func dialTLS(t *testing.T, cfg *Config) *client {
	a, b := net.Pipe()
	tc := tls.Client(a, &tls.Config{InsecureSkipVerify: true})
	c := &client{t: t, conn: tc, r: bufio.NewReader(tc), done: make(chan struct{})}
	go func() { Serve(b, cfg); close(c.done) }()
	t.Cleanup(func() { a.Close(); <-c.done })
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	c.expect("220")
	return c
}

func TestImplicitTLS(t *testing.T) {
	q := &memQueue{}
	cfg := authConfig(t, q)
	cfg.ImplicitTLS = true
	c := dialTLS(t, cfg)
	ehlo := strings.Join(c.cmd("EHLO x", "250"), "")
	if strings.Contains(ehlo, "STARTTLS") || !strings.Contains(ehlo, "AUTH PLAIN LOGIN") {
		t.Errorf("EHLO on SMTPS: %s", ehlo)
	}
	c.cmd("STARTTLS", "503")
	c.cmd("AUTH PLAIN "+b64("\x00joe\x00secret"), "235")
	c.relayAsJoe(q)
}

// A plain-text client on an SMTPS port, or no certificate: no greeting
// in the clear, the connection is closed.
func TestImplicitTLSRefusals(t *testing.T) {
	for name, cfg := range map[string]*Config{
		"plain client": authConfig(t, &memQueue{}),
		"no cert":      testConfig(t, &memQueue{}, nil),
	} {
		cfg.ImplicitTLS = true
		var log strings.Builder
		cfg.Log = &log
		a, b := net.Pipe()
		done := make(chan struct{})
		go func() { Serve(b, cfg); close(done) }()
		if name == "plain client" {
			go io.WriteString(a, "EHLO x\r\n")
		}
		got, _ := io.ReadAll(a)
		<-done
		if strings.Contains(string(got), "220") {
			t.Errorf("%s: greeting in the clear: %q", name, got)
		}
		if !strings.Contains(log.String(), "TLS handshake failed") && !strings.Contains(log.String(), "no certificate") {
			t.Errorf("%s: log %q", name, log.String())
		}
	}
}

// TestAuthMistakesEndSession: malformed AUTH exchanges are bad commands
// like any other (RFC 4954 gives no free retries): the tenth ends the
// session with 421, whichever way each one went wrong.
func TestAuthMistakesEndSession(t *testing.T) {
	c := dial(t, authConfig(t, &memQueue{}))
	c.cmd("EHLO x", "250")
	c.cmd("AUTH PLAIN "+b64("\x00joe\x00secret"), "538") // in the clear: counted
	c.startTLS()
	c.cmd("EHLO x", "250")
	c.cmd("AUTH PLAIN !!!", "501")                 // not base64
	c.cmd("AUTH PLAIN *", "501")                   // cancelled
	c.cmd("AUTH PLAIN "+b64("joe"), "501")         // not three fields
	c.cmd("AUTH PLAIN "+b64("a\x00b\x00c"), "501") // authzid differs
	c.cmd("AUTH PLAIN "+b64("\x00\x00x"), "501")   // empty user
	c.cmd("AUTH LOGIN", "334")
	c.cmd("*", "501")
	c.cmd("AUTH PLAIN", "334")
	c.cmd("%%%", "501")
	c.cmd("AUTH CRAM-MD5", "504")
	c.cmd("AUTH PLAIN *", "421")
}
