package remote

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// testServer is an in-process SMTP server on 127.0.0.1 whose answers
// are steered by the recipient's local part:
//
//	temp...  451 to RCPT          perm...  550 to RCPT
//	drop...  the connection is closed at RCPT
//	stall... RCPT waits until the test closes server.release
//	datatemp / dataperm ...  accepted, then 451 / 554 after the message
type testServer struct {
	t       *testing.T
	srv     *smtp.Server
	addr    string
	port    int
	user    string // AUTH credentials, if set
	pass    string
	login   bool          // offer AUTH LOGIN only, not PLAIN
	stalled chan struct{} // a stall recipient has arrived
	release chan struct{}

	mu    sync.Mutex
	mails []*received
}

// received is one transaction the server accepted.
type received struct {
	From     string
	MailOpts smtp.MailOptions
	Rcpts    []string
	Data     []byte
	TLS      bool
	Authed   string
}

func startServer(t *testing.T, configure func(*smtp.Server)) *testServer {
	t.Helper()
	ts := &testServer{t: t, stalled: make(chan struct{}, 10), release: make(chan struct{})}
	s := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &testSession{ts: ts, conn: c}, nil
	}))
	s.Domain = "test.invalid"
	s.AllowInsecureAuth = false
	configure(s)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.srv, ts.addr, ts.port = s, ln.Addr().String(), ln.Addr().(*net.TCPAddr).Port
	go s.Serve(ln)
	t.Cleanup(func() {
		select {
		case <-ts.release:
		default:
			close(ts.release)
		}
		s.Close()
	})
	return ts
}

func (ts *testServer) got() []*received {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]*received(nil), ts.mails...)
}

type testSession struct {
	ts   *testServer
	conn *smtp.Conn
	cur  received
}

func (s *testSession) Reset()        { s.cur = received{} }
func (s *testSession) Logout() error { return nil }

func (s *testSession) Mail(from string, opts *smtp.MailOptions) error {
	s.cur.From = from
	if opts != nil {
		s.cur.MailOpts = *opts
	}
	if strings.HasPrefix(from, "mailtemp") {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}
	}
	if strings.HasPrefix(from, "mailperm") {
		return &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "go away"}
	}
	return nil
}

func (s *testSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	switch {
	case strings.HasPrefix(to, "temp"):
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 2, 0}, Message: "mailbox busy"}
	case strings.HasPrefix(to, "perm"):
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	case strings.HasPrefix(to, "drop"):
		s.conn.Close()
		return errors.New("dropped")
	case strings.HasPrefix(to, "stall"):
		s.ts.stalled <- struct{}{}
		<-s.ts.release
		return errors.New("released")
	}
	s.cur.Rcpts = append(s.cur.Rcpts, to)
	return nil
}

func (s *testSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	for _, rc := range s.cur.Rcpts {
		if strings.HasPrefix(rc, "datatemp") {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "disk full"}
		}
		if strings.HasPrefix(rc, "dataperm") {
			return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "content rejected"}
		}
	}
	s.cur.Data = b
	_, s.cur.TLS = s.conn.TLSConnectionState()
	m := s.cur
	s.ts.mu.Lock()
	s.ts.mails = append(s.ts.mails, &m)
	s.ts.mu.Unlock()
	return nil
}

func (s *testSession) AuthMechanisms() []string {
	if s.ts.user == "" {
		return nil
	}
	if s.ts.login {
		return []string{sasl.Login}
	}
	return []string{sasl.Plain}
}

func (s *testSession) check(user, pass string) error {
	if user != s.ts.user || pass != s.ts.pass {
		return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "bad credentials"}
	}
	s.cur.Authed = user
	return nil
}

func (s *testSession) Auth(mech string) (sasl.Server, error) {
	if mech == sasl.Login {
		return &loginServer{check: s.check}, nil
	}
	return sasl.NewPlainServer(func(identity, user, pass string) error { return s.check(user, pass) }), nil
}

// loginServer is the server side of AUTH LOGIN, which go-sasl lacks.
type loginServer struct {
	check func(user, pass string) error
	step  int
	user  string
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	l.step++
	switch l.step {
	case 1:
		if len(resp) > 0 { // an initial response: the user name
			l.user = string(resp)
			l.step++
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 2:
		l.user = string(resp)
		return []byte("Password:"), false, nil
	}
	return nil, true, l.check(l.user, string(resp))
}

// testCert makes a self-signed certificate for 127.0.0.1 and
// "relay.test", and a pool that trusts it.
func testCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "relay.test"},
		DNSNames:              []string{"relay.test"},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}
