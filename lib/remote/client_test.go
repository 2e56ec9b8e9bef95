package remote

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"omail/lib/control"
	"omail/lib/internal/testfake"
	"omail/lib/masquerade"
	"omail/lib/outcome"
	"omail/lib/route"
)

func writeMsg(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "msg")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func relay(port int) route.Dest {
	return route.Dest{Domain: "example.test", Relay: "[127.0.0.1]", Port: port}
}

func statuses(res []Result) string {
	var b strings.Builder
	for _, r := range res {
		fmt.Fprintf(&b, "%s=%s ", r.Rcpt, r.Status)
	}
	return strings.TrimSpace(b.String())
}

func checkStatuses(t *testing.T, res []Result, want string) {
	t.Helper()
	if got := statuses(res); got != want {
		t.Errorf("results %s, want %s", got, want)
		for _, r := range res {
			t.Logf("  %s: %s", r.Rcpt, r.Text)
		}
	}
}

const sample = "From: Joe <joe@kiosk1.local>\nTo: a@example.test\nSubject: caf\xc3\xa9\n\n.leading dot\n..two dots\nbare\rcr and crlf\r\nlast line without newline"

// The bytes the server gets: every line in CRLF, the bare CR as a line
// end, and a CRLF added at the end.
const sampleWire = "From: Joe <joe@kiosk1.local>\r\nTo: a@example.test\r\nSubject: caf\xc3\xa9\r\n\r\n.leading dot\r\n..two dots\r\nbare\r\ncr and crlf\r\nlast line without newline\r\n"

func TestPerRecipientReplies(t *testing.T) {
	ts := startServer(t, func(*smtp.Server) {})
	c := &Client{Helo: "omail.test"}
	res := c.Deliver(context.Background(), relay(ts.port), writeMsg(t, sample), "joe@kiosk1.local",
		[]string{"ok1@example.test", "perm1@example.test", "temp1@example.test", "ok2@example.test"})
	checkStatuses(t, res, "ok1@example.test=ok perm1@example.test=perm temp1@example.test=temp ok2@example.test=ok")
	if !strings.Contains(res[1].Text, "550 5.1.1 no such user") || res[1].Host != "[127.0.0.1]" {
		t.Errorf("perm text %q host %q", res[1].Text, res[1].Host)
	}
	got := ts.got()
	if len(got) != 1 {
		t.Fatalf("%d transactions, want 1", len(got))
	}
	m := got[0]
	if string(m.Data) != sampleWire {
		t.Errorf("data\n%q\nwant\n%q", m.Data, sampleWire)
	}
	if m.From != "joe@kiosk1.local" || strings.Join(m.Rcpts, ",") != "ok1@example.test,ok2@example.test" {
		t.Errorf("envelope %q %q", m.From, m.Rcpts)
	}
	if m.MailOpts.Body != smtp.Body8BitMIME || m.MailOpts.Size != int64(len(sampleWire)) {
		t.Errorf("MAIL options %+v, want BODY=8BITMIME SIZE=%d", m.MailOpts, len(sampleWire))
	}
	if m.TLS {
		t.Error("TLS without a certificate?")
	}
}

func TestSevenBitHasNoBody(t *testing.T) {
	ts := startServer(t, func(*smtp.Server) {})
	res := (&Client{}).Deliver(context.Background(), relay(ts.port), writeMsg(t, "Subject: x\n\nplain\n"), "", []string{"a@example.test"})
	checkStatuses(t, res, "a@example.test=ok")
	m := ts.got()[0]
	if m.MailOpts.Body != "" || m.From != "" {
		t.Errorf("BODY=%q from %q", m.MailOpts.Body, m.From)
	}
}

func TestDataReplies(t *testing.T) {
	ts := startServer(t, func(*smtp.Server) {})
	c := &Client{}
	msg := writeMsg(t, "x\n")
	checkStatuses(t, c.Deliver(context.Background(), relay(ts.port), msg, "s@x.test", []string{"datatemp@x", "perm@x"}), "datatemp@x=temp perm@x=perm")
	checkStatuses(t, c.Deliver(context.Background(), relay(ts.port), msg, "s@x.test", []string{"dataperm@x", "a@x"}), "dataperm@x=perm a@x=perm")
	checkStatuses(t, c.Deliver(context.Background(), relay(ts.port), msg, "mailperm@x.test", []string{"a@x", "b@x"}), "a@x=perm b@x=perm")
	checkStatuses(t, c.Deliver(context.Background(), relay(ts.port), msg, "mailtemp@x.test", []string{"a@x"}), "a@x=temp")
	if n := len(ts.got()); n != 0 {
		t.Errorf("%d messages accepted", n)
	}
}

func TestDropAndStall(t *testing.T) {
	ts := startServer(t, func(*smtp.Server) {})
	msg := writeMsg(t, "x\n")
	c := &Client{}
	checkStatuses(t, c.Deliver(context.Background(), relay(ts.port), msg, "s@x", []string{"a@x", "drop@x", "b@x"}), "a@x=temp drop@x=temp b@x=temp")

	// A stalled server: the caller gives up (cancels ctx).
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-ts.stalled; cancel() }()
	checkStatuses(t, c.Deliver(ctx, relay(ts.port), msg, "s@x", []string{"stall@x"}), "stall@x=temp")

	// A stalled server: timeoutremote runs out.
	c.CommandTimeout = 50 * time.Millisecond
	res := c.Deliver(context.Background(), relay(ts.port), msg, "s@x", []string{"a@x", "stall@x"})
	checkStatuses(t, res, "a@x=temp stall@x=temp")
	if n := len(ts.got()); n != 0 {
		t.Errorf("%d messages accepted", n)
	}
}

func TestSTARTTLS(t *testing.T) {
	cert, pool := testCert(t)
	ts := startServer(t, func(s *smtp.Server) { s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}} })
	msg := writeMsg(t, "x\n")

	// Opportunistic: the certificate is not checked.
	c := &Client{Helo: "omail.test"}
	checkStatuses(t, c.Deliver(context.Background(), relay(ts.port), msg, "s@x", []string{"a@x"}), "a@x=ok")
	// Required: checked, and our pool trusts it.
	d := relay(ts.port)
	d.RequireTLS = true
	c.TLSConfig = &tls.Config{RootCAs: pool}
	checkStatuses(t, c.Deliver(context.Background(), d, msg, "s@x", []string{"b@x"}), "b@x=ok")
	// Required, and the certificate is not trusted.
	c.TLSConfig = nil
	res := c.Deliver(context.Background(), d, msg, "s@x", []string{"c@x"})
	checkStatuses(t, res, "c@x=temp")
	if !strings.Contains(res[0].Text, "4.7.5") {
		t.Errorf("text %q", res[0].Text)
	}
	got := ts.got()
	if len(got) != 2 || !got[0].TLS || !got[1].TLS {
		t.Fatalf("transactions %d", len(got))
	}

	// Required, and not offered.
	plain := startServer(t, func(*smtp.Server) {})
	d = relay(plain.port)
	d.RequireTLS = true
	res = c.Deliver(context.Background(), d, msg, "s@x", []string{"c@x"})
	checkStatuses(t, res, "c@x=temp")
	if !strings.Contains(res[0].Text, "4.7.10") || len(plain.got()) != 0 {
		t.Errorf("text %q", res[0].Text)
	}
}

func TestAuth(t *testing.T) {
	cert, pool := testCert(t)
	ts := startServer(t, func(s *smtp.Server) { s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}} })
	ts.user, ts.pass = "joe", "se:cret"
	msg := writeMsg(t, "x\n")
	c := &Client{TLSConfig: &tls.Config{RootCAs: pool}}
	d := route.Dest{Domain: "x", Relay: "relay.test", Port: ts.port, RequireTLS: true, Auth: &route.Credentials{User: "joe", Password: "se:cret"}}
	c.Resolver = testfake.DNS{Hosts: map[string][]string{"relay.test": {"127.0.0.1"}}}
	checkStatuses(t, c.Deliver(context.Background(), d, msg, "s@x", []string{"a@x"}), "a@x=ok")
	if got := ts.got(); len(got) != 1 || got[0].Authed != "joe" {
		t.Fatalf("not authenticated: %+v", got)
	}
	d.Auth = &route.Credentials{User: "joe", Password: "wrong"}
	res := c.Deliver(context.Background(), d, msg, "s@x", []string{"a@x"})
	checkStatuses(t, res, "a@x=temp")
	if !strings.Contains(res[0].Text, "AUTH failed") {
		t.Errorf("text %q", res[0].Text)
	}
	// LOGIN where PLAIN is not offered.
	ts.login = true
	d.Auth = &route.Credentials{User: "joe", Password: "se:cret"}
	checkStatuses(t, c.Deliver(context.Background(), d, msg, "s@x", []string{"b@x"}), "b@x=ok")
	if got := ts.got(); len(got) != 2 || got[1].Authed != "joe" {
		t.Fatalf("not authenticated by LOGIN: %+v", got)
	}
	// Never a password in clear: with no TLS there is no AUTH at all
	// (even for a Dest that, wrongly, does not require TLS).
	plain := startServer(t, func(*smtp.Server) {})
	plain.user, plain.pass = "joe", "se:cret"
	d = relay(plain.port)
	d.Auth = &route.Credentials{User: "joe", Password: "se:cret"}
	res = c.Deliver(context.Background(), d, msg, "s@x", []string{"c@x"})
	checkStatuses(t, res, "c@x=temp")
	if !strings.Contains(res[0].Text, "without TLS") || len(plain.got()) != 0 {
		t.Errorf("text %q", res[0].Text)
	}
}

// A server that offers STARTTLS and then fails the handshake still gets
// the mail, in plain text, unless the route requires TLS.
func TestBrokenSTARTTLS(t *testing.T) {
	ts := startServer(t, func(s *smtp.Server) { s.TLSConfig = &tls.Config{} }) // no certificate
	msg := writeMsg(t, "x\n")
	checkStatuses(t, (&Client{}).Deliver(context.Background(), relay(ts.port), msg, "s@x", []string{"a@x"}), "a@x=ok")
	if g := ts.got(); len(g) != 1 || g[0].TLS {
		t.Errorf("got %+v", g)
	}
	d := relay(ts.port)
	d.RequireTLS = true
	checkStatuses(t, (&Client{}).Deliver(context.Background(), d, msg, "s@x", []string{"b@x"}), "b@x=temp")
}

// A 5xx greeting defers (as qmail), it does not bounce.
func TestGreeting554(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.Write([]byte("554 5.7.1 no service\r\n"))
		line, _ := bufio.NewReader(c).ReadString('\n')
		if line == "QUIT\r\n" {
			c.Write([]byte("221 bye\r\n"))
		}
	}()
	res := (&Client{}).Deliver(context.Background(), relay(ln.Addr().(*net.TCPAddr).Port), writeMsg(t, "x\n"), "s@x", []string{"a@x"})
	checkStatuses(t, res, "a@x=temp")
	if !strings.Contains(res[0].Text, "554 5.7.1 no service") {
		t.Errorf("text %q", res[0].Text)
	}
}

func TestFromControl(t *testing.T) {
	ctl := control.New(t.TempDir())
	if err := os.MkdirAll(ctl.Path, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{"me": "kiosk.test\n", "timeoutremote": "7\n", "masquerade": "kiosk.test:example.org\n"} {
		if err := os.WriteFile(ctl.File(name), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c, err := FromControl(ctl)
	if err != nil {
		t.Fatal(err)
	}
	if c.Helo != "kiosk.test" || c.CommandTimeout != 7*time.Second || c.ConnectTimeout != 60*time.Second || c.Masquerade.Address("a@kiosk.test") != "a@example.org" {
		t.Errorf("client %+v", c)
	}
	if err := os.WriteFile(ctl.File("timeoutconnect"), []byte("soon\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := FromControl(ctl); err == nil {
		t.Error("bad timeoutconnect accepted")
	}
}

func TestMasquerade(t *testing.T) {
	ts := startServer(t, func(*smtp.Server) {})
	m, err := masquerade.Parse([]string{"kiosk1.local:example.org"})
	if err != nil {
		t.Fatal(err)
	}
	c := &Client{Masquerade: m}
	body := "From: Joe <joe@kiosk1.local>\nReply-To: joe@kiosk1.local\nTo: bob@kiosk1.local\n\nFrom: joe@kiosk1.local\n"
	res := c.Deliver(context.Background(), relay(ts.port), writeMsg(t, body), "joe@kiosk1.local", []string{"a@x"})
	checkStatuses(t, res, "a@x=ok")
	g := ts.got()[0]
	want := "From: Joe <joe@example.org>\r\nReply-To: joe@example.org\r\nTo: bob@kiosk1.local\r\n\r\nFrom: joe@kiosk1.local\r\n"
	if g.From != "joe@example.org" || string(g.Data) != want {
		t.Errorf("got %q %q", g.From, g.Data)
	}
	// SIZE counts the rewritten message.
	if g.MailOpts.Size != int64(len(want)) {
		t.Errorf("SIZE=%d, want %d", g.MailOpts.Size, len(want))
	}
}

// The sender is masqueraded once, also when a recipient that cannot be
// sent makes Deliver call itself for the others: with chained lines
// (kiosk1.local to hub.example, hub.example to example.org) a second
// rewrite would change the sender again.
func TestMasqueradeOnce(t *testing.T) {
	ts := startServer(t, func(*smtp.Server) {})
	m, err := masquerade.Parse([]string{"kiosk1.local:hub.example", "hub.example:example.org"})
	if err != nil {
		t.Fatal(err)
	}
	c := &Client{Masquerade: m}
	p := writeMsg(t, "From: joe@kiosk1.local\n\nx\n")
	checkStatuses(t, c.Deliver(context.Background(), relay(ts.port), p, "joe@kiosk1.local", []string{"a@x.test"}), "a@x.test=ok")
	checkStatuses(t, c.Deliver(context.Background(), relay(ts.port), p, "joe@kiosk1.local", []string{"a@x.test", "b\n@x.test"}), "a@x.test=ok b\n@x.test=perm")
	g := ts.got()
	if len(g) != 2 || g[0].From != "joe@hub.example" || g[1].From != "joe@hub.example" {
		for _, r := range g {
			t.Logf("MAIL FROM:<%s>", r.From)
		}
		t.Errorf("the sender was not rewritten once in both transactions")
	}
}

func TestSMTPUTF8(t *testing.T) {
	msg := writeMsg(t, "x\n")
	without := startServer(t, func(*smtp.Server) {})
	res := (&Client{}).Deliver(context.Background(), relay(without.port), msg, "s@x", []string{"j\u00f6rg@x", "a@x"})
	checkStatuses(t, res, "j\u00f6rg@x=perm a@x=ok")
	if !strings.Contains(res[0].Text, "5.6.7") || !strings.Contains(res[0].Text, "SMTPUTF8") {
		t.Errorf("text %q", res[0].Text)
	}
	res = (&Client{}).Deliver(context.Background(), relay(without.port), msg, "j\u00f6rg@x", []string{"a@x"})
	checkStatuses(t, res, "a@x=perm")

	with := startServer(t, func(s *smtp.Server) { s.EnableSMTPUTF8 = true })
	res = (&Client{}).Deliver(context.Background(), relay(with.port), msg, "s@x", []string{"j\u00f6rg@x", "a@x"})
	checkStatuses(t, res, "j\u00f6rg@x=ok a@x=ok")
	if g := with.got(); len(g) != 1 || !g[0].MailOpts.UTF8 {
		t.Errorf("no SMTPUTF8 in MAIL: %+v", g)
	}
}

func TestSizeLimit(t *testing.T) {
	ts := startServer(t, func(s *smtp.Server) { s.MaxMessageBytes = 10 })
	res := (&Client{}).Deliver(context.Background(), relay(ts.port), writeMsg(t, "this is longer than ten bytes\n"), "s@x", []string{"a@x"})
	checkStatuses(t, res, "a@x=perm")
	if !strings.Contains(res[0].Text, "5.3.4") {
		t.Errorf("text %q", res[0].Text)
	}
}

func TestBadAddress(t *testing.T) {
	ts := startServer(t, func(*smtp.Server) {})
	res := (&Client{}).Deliver(context.Background(), relay(ts.port), writeMsg(t, "x\n"), "s@x", []string{"a@x\r\nRSET", "b@x"})
	checkStatuses(t, res, "a@x\r\nRSET=perm b@x=ok")
	res = (&Client{}).Deliver(context.Background(), relay(ts.port), writeMsg(t, "x\n"), "s@x>", []string{"c@x"})
	checkStatuses(t, res, "c@x=perm")
	if g := ts.got(); len(g) != 1 || strings.Join(g[0].Rcpts, ",") != "b@x" {
		t.Errorf("server got %+v", g)
	}
}

// deadPort returns a loopback port where nothing listens.
func deadPort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return p
}

// greeter421 accepts connections and answers 421 to each.
func greeter421(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("421 4.3.2 too busy\r\n"))
			c.Close()
		}
	}()
	return ln.Addr().String()
}

func TestMXOrderAndFallback(t *testing.T) {
	ts := startServer(t, func(*smtp.Server) {})
	dead := fmt.Sprintf("127.0.0.1:%d", deadPort(t))
	busy := greeter421(t)
	// Documentation addresses stand for the hosts; Dial maps them to
	// the loopback servers, so nothing leaves the machine.
	where := map[string]string{"192.0.2.1:25": dead, "192.0.2.2:25": busy, "192.0.2.3:25": ts.addr}
	var dialed []string
	c := &Client{
		Resolver: testfake.DNS{
			MX: map[string][]*net.MX{
				"mx.test":   {{Host: "live.test.", Pref: 30}, {Host: "dead.test.", Pref: 10}, {Host: "busy.test.", Pref: 20}},
				"null.test": {{Host: ".", Pref: 0}},
			},
			Hosts: map[string][]string{"dead.test": {"192.0.2.1"}, "busy.test": {"192.0.2.2"}, "live.test": {"192.0.2.3"}},
		},
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dialed = append(dialed, addr)
			var d net.Dialer
			return d.DialContext(ctx, network, where[addr])
		},
		Backoff: &Backoff{},
	}
	msg := writeMsg(t, "x\n")
	mx := route.Dest{Domain: "mx.test", Port: 25}
	checkStatuses(t, c.Deliver(context.Background(), mx, msg, "s@x", []string{"a@mx.test"}), "a@mx.test=ok")
	if strings.Join(dialed, " ") != "192.0.2.1:25 192.0.2.2:25 192.0.2.3:25" {
		t.Errorf("dialed %v", dialed)
	}
	// The dead and the busy host are in back-off now: not tried again.
	dialed = nil
	checkStatuses(t, c.Deliver(context.Background(), mx, msg, "s@x", []string{"b@mx.test"}), "b@mx.test=ok")
	if strings.Join(dialed, " ") != "192.0.2.3:25" {
		t.Errorf("dialed %v", dialed)
	}
	for dom, want := range map[string]string{"null.test": "5.1.10", "gone.test": "5.1.2"} {
		res := c.Deliver(context.Background(), route.Dest{Domain: dom, Port: 25}, msg, "s@x", []string{"a@" + dom})
		checkStatuses(t, res, "a@"+dom+"=perm")
		if !strings.Contains(res[0].Text, want) {
			t.Errorf("%s: %q", dom, res[0].Text)
		}
	}
}

func TestDeadRelayDoesNotDelayLiveOne(t *testing.T) {
	ts := startServer(t, func(*smtp.Server) {})
	now := time.Unix(1e9, 0)
	var dials atomic.Int32
	c := &Client{
		Backoff: &Backoff{Now: func() time.Time { return now }},
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
	msg := writeMsg(t, "x\n")
	dead := relay(deadPort(t))
	res := c.Deliver(context.Background(), dead, msg, "s@x", []string{"a@x"})
	checkStatuses(t, res, "a@x=temp")
	if !strings.Contains(res[0].Text, "cannot connect") {
		t.Errorf("text %q", res[0].Text)
	}
	if _, ok := c.Backoff.Until(dead.Key()); !ok {
		t.Error("dead relay not in back-off")
	}
	// The live relay is not held up, and the dead one is not dialled
	// again until its back-off ends.
	checkStatuses(t, c.Deliver(context.Background(), relay(ts.port), msg, "s@x", []string{"b@x"}), "b@x=ok")
	checkStatuses(t, c.Deliver(context.Background(), dead, msg, "s@x", []string{"c@x"}), "c@x=temp")
	if n := dials.Load(); n != 2 {
		t.Errorf("%d dials, want 2", n)
	}
	now = now.Add(2 * time.Minute)
	c.Deliver(context.Background(), dead, msg, "s@x", []string{"c@x"})
	if n := dials.Load(); n != 3 {
		t.Errorf("%d dials after the back-off, want 3", n)
	}
}

func TestEndlessReplyLine(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		junk := []byte(strings.Repeat("2", 4096))
		for {
			if _, err := c.Write(junk); err != nil {
				return
			}
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	res := (&Client{}).Deliver(context.Background(), relay(port), writeMsg(t, "x\n"), "s@x", []string{"a@x"})
	checkStatuses(t, res, "a@x=temp")
	if !strings.Contains(res[0].Text, "too long") {
		t.Errorf("text %q", res[0].Text)
	}
}

// A destination that must wait (smtpauth unusable) is deferred with its
// reason, and no connection is made.
func TestWaitDefersWithoutConnecting(t *testing.T) {
	ts := startServer(t, func(*smtp.Server) {})
	d := relay(ts.port)
	d.Wait = "4.3.5 control file smtpauth: mode 0644: readable by others"
	c := &Client{Backoff: &Backoff{}}
	res := c.Deliver(context.Background(), d, writeMsg(t, "x\n"), "s@x", []string{"a@x", "b@x"})
	checkStatuses(t, res, "a@x=temp b@x=temp")
	for _, r := range res {
		if r.Text != d.Wait {
			t.Errorf("%s: %q", r.Rcpt, r.Text)
		}
	}
	if g := ts.got(); len(g) != 0 {
		t.Errorf("server got %+v", g)
	}
	if _, ok := c.Backoff.Until(d.Key()); ok {
		t.Error("the destination was put in back-off for our own trouble")
	}
}

// capServer is a scripted server that takes at most caps[k] recipients
// in its k-th transaction (the last cap for the ones after) and refuses
// the others with "452 4.5.3" (or refuse), as a server with a recipient limit does.
// ends[k] answers the k-th end of data and mails[k] the k-th MAIL ("250"
// after the last, or for ""). It notes
// every command but QUIT (which Deliver does not wait for).
type capServer struct {
	caps   []int
	ends   []string
	mails  []string
	refuse string // the refusal; "": "452 4.5.3 too many recipients"
	// onEnd, if set, runs at each end of data, before the answer.
	onEnd func()

	mu   sync.Mutex
	txn  int // transactions begun
	n    int // recipients taken in the current one
	cmds []string
}

func (cs *capServer) start(t *testing.T, ehlo string) (port int, got func() []string) {
	plain := plainAnswers(ehlo, "")
	return scripted(t, func(cmd string) string {
		cs.mu.Lock()
		defer cs.mu.Unlock()
		if cmd != "" && cmd != "QUIT" {
			cs.cmds = append(cs.cmds, cmd)
		}
		switch {
		case strings.HasPrefix(cmd, "MAIL"):
			cs.txn++
			cs.n = 0
			if cs.txn <= len(cs.mails) && cs.mails[cs.txn-1] != "" {
				return cs.mails[cs.txn-1]
			}
		case strings.HasPrefix(cmd, "RCPT"):
			if cs.n >= cs.caps[min(cs.txn, len(cs.caps))-1] {
				if cs.refuse != "" {
					return cs.refuse + "\r\n"
				}
				return "452 4.5.3 too many recipients\r\n"
			}
			cs.n++
		case cmd == ".":
			if cs.onEnd != nil {
				cs.onEnd()
			}
			if cs.txn <= len(cs.ends) {
				return cs.ends[cs.txn-1]
			}
			return "250 2.0.0 queued\r\n"
		}
		return plain(cmd)
	})
}

// summary is the conversation in short: MAIL, each recipient (marked !
// when refused for the cap), DATA and the end of data.
func (cs *capServer) summary() string {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	var out []string
	n, txn := 0, 0
	for _, c := range cs.cmds {
		switch {
		case strings.HasPrefix(c, "EHLO"):
		case strings.HasPrefix(c, "MAIL"):
			out, n = append(out, "MAIL"), 0
			txn++
		case strings.HasPrefix(c, "RCPT TO:<"):
			r := strings.TrimSuffix(strings.TrimPrefix(c, "RCPT TO:<"), ">")
			if n >= cs.caps[min(txn, len(cs.caps))-1] {
				r += "!"
			}
			n++
			out = append(out, r)
		default:
			out = append(out, c)
		}
	}
	return strings.Join(out, " ")
}

const (
	ehloPipelining = "250-sink.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
	ehloPlain      = "250-sink.test\r\n250 SIZE 1000000\r\n"
)

// RFC 5321 4.5.3.1.10: the recipients a server refuses with 452 because
// a transaction has enough get a transaction of their own at once, on
// the same connection, and so on until all are done; each recipient is
// in one accepted RCPT only, and its result is its own transaction's.
// The refusal is 452, or 4xx with 4.5.3, or RFC 821's 552 with 5.5.3.
func TestTooManyRecipients(t *testing.T) {
	for _, tc := range []struct{ ehlo, refuse string }{
		{ehloPipelining, ""},
		{ehloPlain, ""},
		{ehloPipelining, "451 4.5.3 enough for now"},
		{ehloPlain, "552 5.5.3 too many recipients"},
	} {
		cs := &capServer{caps: []int{2}, refuse: tc.refuse}
		port, got := cs.start(t, tc.ehlo)
		var dials atomic.Int32
		c := &Client{Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}}
		res := c.Deliver(context.Background(), relay(port), writeMsg(t, "Subject: x\n\nhello\n"), "s@x.test",
			[]string{"a@x.test", "b@x.test", "c@x.test", "d@x.test", "e@x.test"})
		checkStatuses(t, res, "a@x.test=ok b@x.test=ok c@x.test=ok d@x.test=ok e@x.test=ok")
		want := "MAIL a@x.test b@x.test c@x.test! d@x.test! e@x.test! DATA . " +
			"MAIL c@x.test d@x.test e@x.test! DATA . " +
			"MAIL e@x.test DATA ."
		if s := cs.summary(); s != want {
			t.Errorf("conversation\n%s\nwant\n%s", s, want)
		}
		if data := got(); len(data) != 3 || data[0] != "Subject: x\r\n\r\nhello\r\n" || data[1] != data[0] || data[2] != data[0] {
			t.Errorf("messages %q", data)
		}
		if n := dials.Load(); n != 1 {
			t.Errorf("%d connections, want 1", n)
		}
	}
}

// go-smtp's server with MaxRecipients (452 4.5.3 beyond it): the other
// replies of each transaction (550, 451) stay the recipient's own.
func TestTooManyRecipientsMixed(t *testing.T) {
	ts := startServer(t, func(s *smtp.Server) { s.MaxRecipients = 2 })
	res := (&Client{}).Deliver(context.Background(), relay(ts.port), writeMsg(t, "x\n"), "s@x.test",
		[]string{"a@x.test", "perm@x.test", "b@x.test", "c@x.test", "temp@x.test", "d@x.test", "e@x.test"})
	checkStatuses(t, res, "a@x.test=ok perm@x.test=perm b@x.test=ok c@x.test=ok temp@x.test=temp d@x.test=ok e@x.test=ok")
	if !strings.Contains(res[4].Text, "451 4.2.0") || !strings.Contains(res[1].Text, "550 5.1.1") {
		t.Errorf("texts %q %q", res[1].Text, res[4].Text)
	}
	var txns []string
	for _, m := range ts.got() {
		txns = append(txns, strings.Join(m.Rcpts, ","))
	}
	if got := strings.Join(txns, " "); got != "a@x.test,b@x.test c@x.test,d@x.test e@x.test" {
		t.Errorf("transactions %s", got)
	}
}

// A new transaction goes on only while one makes progress: when nobody
// is accepted, or the end of data is deferred, the recipients left keep
// their 452 (deferred) for the next attempt. A 5xx at the end of data is
// that transaction's answer only: the next one gets its own. A failure
// of MAIL in a later transaction defers who is left (the host has
// answered for the others, so no other host is tried).
func TestTooManyRecipientsNoProgress(t *testing.T) {
	rcpts := []string{"a@x.test", "b@x.test", "c@x.test"}
	for _, tc := range []struct {
		name     string
		caps     []int
		ends     []string
		mail2    string // the reply to the second MAIL, if not 250
		refuse   string // capServer.refuse
		statuses string
		conv     string
	}{
		{"nobody accepted", []int{1, 0}, nil, "", "",
			"a@x.test=ok b@x.test=temp c@x.test=temp",
			"MAIL a@x.test b@x.test! c@x.test! DATA . MAIL b@x.test! c@x.test!"},
		{"nobody accepted, 552 5.5.3", []int{1, 0}, nil, "", "552 5.5.3 too many recipients",
			"a@x.test=ok b@x.test=temp c@x.test=temp",
			"MAIL a@x.test b@x.test! c@x.test! DATA . MAIL b@x.test! c@x.test!"},
		{"end of data deferred", []int{1}, []string{"451 4.3.0 disk full\r\n"}, "", "",
			"a@x.test=temp b@x.test=temp c@x.test=temp",
			"MAIL a@x.test b@x.test! c@x.test! DATA ."},
		{"end of data refused", []int{1}, []string{"554 5.7.1 spam\r\n"}, "", "",
			"a@x.test=perm b@x.test=ok c@x.test=ok",
			"MAIL a@x.test b@x.test! c@x.test! DATA . MAIL b@x.test c@x.test! DATA . MAIL c@x.test DATA ."},
		{"second MAIL deferred", []int{1}, nil, "451 4.3.2 busy\r\n", "",
			"a@x.test=ok b@x.test=temp c@x.test=temp",
			"MAIL a@x.test b@x.test! c@x.test! DATA . MAIL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := &capServer{caps: tc.caps, ends: tc.ends, mails: []string{"", tc.mail2}, refuse: tc.refuse}
			port, _ := cs.start(t, ehloPlain)
			res := (&Client{Backoff: &Backoff{}}).Deliver(context.Background(), relay(port), writeMsg(t, "x\n"), "s@x.test", rcpts)
			checkStatuses(t, res, tc.statuses)
			if s := cs.summary(); s != tc.conv {
				t.Errorf("conversation\n%s\nwant\n%s", s, tc.conv)
			}
			for _, r := range res[1:] {
				want := "said: 452 4.5.3 too many recipients"
				if tc.refuse != "" {
					want = "4.5.3 [127.0.0.1] said: " + tc.refuse
				}
				if r.Status == outcome.Temp && tc.mail2 == "" && !strings.HasSuffix(r.Text, want) {
					t.Errorf("%s: %q, want the refusal", r.Rcpt, r.Text)
				}
			}
		})
	}
}

func TestTooManyReply(t *testing.T) {
	for _, tc := range []struct {
		code int
		msg  string
		want bool
	}{
		{452, "4.5.3 too many recipients", true},
		{452, "too many recipients", true},
		{452, "", true},
		{451, "4.5.3 too many recipients", true},
		{451, "4.5.3", true},
		{451, "4.5.3\nsecond line", true},
		{451, "4.5.30 no such code", false},
		{451, "4.2.0 mailbox busy", false},
		{450, "4.5.3x", false},
		{552, "5.5.3 too many recipients", true},
		{552, "5.3.4 message too big", false},
		{552, "too many recipients", false},
		{554, "5.5.3 too many recipients", false},
		{550, "4.5.3 wrong class", false},
	} {
		if got := tooMany(tc.code, tc.msg); got != tc.want {
			t.Errorf("tooMany(%d, %q) = %v", tc.code, tc.msg, got)
		}
	}
}
