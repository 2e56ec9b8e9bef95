package smtpd

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"omail/lib/control"
	"omail/lib/envelope"
	"omail/lib/relay"
)

// scriptConn is a connection whose client side is a fixed script.
type scriptConn struct {
	r   io.Reader
	out bytes.Buffer
}

func (c *scriptConn) Read(b []byte) (int, error)         { return c.r.Read(b) }
func (c *scriptConn) Write(b []byte) (int, error)        { return c.out.Write(b) }
func (c *scriptConn) Close() error                       { return nil }
func (c *scriptConn) LocalAddr() net.Addr                { return &net.TCPAddr{} }
func (c *scriptConn) RemoteAddr() net.Addr               { return &net.TCPAddr{} }
func (c *scriptConn) SetDeadline(t time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(t time.Time) error { return nil }

// memQueue is a queue in memory; code is what its "program" exits with.
type memQueue struct {
	code    int
	msgs    []queued
	aborted int
	started int
}

type queued struct {
	env *envelope.Envelope
	msg string
}

type memSink struct {
	q   *memQueue
	buf bytes.Buffer
}

func (q *memQueue) start() (Sink, error) {
	q.started++
	return &memSink{q: q}, nil
}
func (s *memSink) Write(b []byte) (int, error) { return s.buf.Write(b) }
func (s *memSink) Abort()                      { s.q.aborted++ }
func (s *memSink) Commit(e *envelope.Envelope) (int, error) {
	if s.q.code != 0 {
		return s.q.code, errors.New("queue failed")
	}
	s.q.msgs = append(s.q.msgs, queued{e, s.buf.String()})
	return 0, nil
}

// writeControl makes a control directory from name/contents pairs.
func writeControl(t testing.TB, files map[string]string) *control.Dir {
	dir := t.TempDir()
	ctl := control.New(dir)
	os.MkdirAll(ctl.Path, 0o755)
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(ctl.Path, n), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return ctl
}

func testConfig(t testing.TB, q *memQueue, files map[string]string) *Config {
	if files == nil {
		files = map[string]string{"rcpthosts": "us.example\n"}
	}
	files["me"] = "mx.us.example\n"
	rules, err := relay.Load(writeControl(t, files))
	if err != nil {
		t.Fatal(err)
	}
	return &Config{
		Hostname: "mx.us.example", Greeting: "mx.us.example", MaxRcpt: 100,
		RemoteIP: "192.0.2.1", Rules: rules, Queue: q.start,
		Now:   func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) },
		NewID: func() string { return "ID" },
	}
}

// run serves a scripted session and returns the replies, one per line.
func run(cfg *Config, script string) []string {
	c := &scriptConn{r: strings.NewReader(script)}
	Serve(c, cfg)
	return strings.Split(strings.TrimSuffix(c.out.String(), "\r\n"), "\r\n")
}

// codes returns the reply codes of a session, continuation lines left out.
func codes(replies []string) string {
	var out []string
	for _, r := range replies {
		if len(r) >= 4 && r[3] == ' ' {
			out = append(out, r[:3])
		}
	}
	return strings.Join(out, " ")
}

const crlf = "\r\n"

func lines(l ...string) string { return strings.Join(l, crlf) + crlf }

func TestLocalDelivery(t *testing.T) {
	q := &memQueue{}
	r := run(testConfig(t, q, nil), lines("EHLO client.example", "MAIL FROM:<a@b.example> BODY=8BITMIME SIZE=10",
		"RCPT TO:<User@US.Example.>", "DATA", "Subject: x", "", "..leading dot", "body", ".", "QUIT"))
	if got, want := codes(r), "220 250 250 250 354 250 221"; got != want {
		t.Fatalf("codes %s, want %s\n%s", got, want, strings.Join(r, "\n"))
	}
	if len(q.msgs) != 1 {
		t.Fatalf("%d messages queued", len(q.msgs))
	}
	m := q.msgs[0]
	if m.env.Sender != "a@b.example" || len(m.env.Rcpts) != 1 || m.env.Rcpts[0] != "User@us.example" {
		t.Errorf("envelope %+v", m.env)
	}
	want := "Received: from client.example ([192.0.2.1])\n\tby mx.us.example with ESMTP id ID;\n\tFri, 02 Jan 2026 03:04:05 +0000\n" +
		"Subject: x\n\n.leading dot\nbody\n"
	if m.msg != want {
		t.Errorf("message %q\nwant %q", m.msg, want)
	}
}

func TestEHLOExtensions(t *testing.T) {
	cfg := testConfig(t, &memQueue{}, nil)
	cfg.DataBytes = 5000
	r := run(cfg, lines("EHLO x"))
	all := strings.Join(r, "\n")
	for _, ext := range []string{"PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "SIZE 5000"} {
		if !strings.Contains(all, ext) {
			t.Errorf("EHLO lacks %s:\n%s", ext, all)
		}
	}
	for _, ext := range []string{"STARTTLS", "AUTH", "CHUNKING"} {
		if strings.Contains(all, ext) {
			t.Errorf("EHLO offers %s without reason:\n%s", ext, all)
		}
	}
}

// TestRelay is the table of recipient spellings, for a client that may
// not relay, against rcpthosts holding us.example and .sub.us.example.
func TestRelay(t *testing.T) {
	cases := []struct {
		rcpt, code string
	}{
		{"<user@us.example>", "250"},
		{"<user@US.EXAMPLE>", "250"},
		{"<user@us.example.>", "250"},
		{"<user@a.sub.us.example>", "250"},
		{"user@us.example", "250"},
		{"<\"user\"@us.example>", "250"},
		{"<@other.example:user@us.example>", "250"}, // route dropped: stays here
		{"<postmaster>", "250"},
		{"<PostMaster>", "250"},
		{"<user@other.example>", "553"},
		{"<user@us.example.other.example>", "553"},
		{"<user@us.example..>", "501"},
		{"<user@.us.example>", "501"},
		{"<user%other.example@us.example>", "553"},
		{"<other.example!user@us.example>", "553"},
		{"<\"user@other.example\"@us.example>", "553"},
		{"<\"user%other.example\"@us.example>", "553"},
		{"<@us.example:user@other.example>", "553"},
		{"<@us.example,@us.example:user@other.example>", "553"},
		{"<user@1.2.3.4>", "553"},
		{"<user@[1.2.3.4]>", "553"},
		{"<user>", "553"},
		{"<user@>", "501"},
		{"<>", "501"},
		{"<user@us.example> NOTIFY=NEVER", "555"},
		{"<us er@us.example>", "501"},
		{"<user@us.example", "501"},
		{"<user@us_example>", "553"},
	}
	for _, c := range cases {
		q := &memQueue{}
		r := run(testConfig(t, q, map[string]string{"rcpthosts": "us.example\n.sub.us.example\n"}),
			lines("HELO x", "MAIL FROM:<a@b.example>", "RCPT TO:"+c.rcpt, "DATA", "x", ".", "QUIT"))
		got := codes(r)
		want := "220 250 250 " + c.code
		if !strings.HasPrefix(got, want) {
			t.Errorf("RCPT TO:%s: %s, want %s\n%s", c.rcpt, got, want, strings.Join(r, "\n"))
		}
		if c.code != "250" && len(q.msgs) != 0 {
			t.Errorf("RCPT TO:%s: a message was queued", c.rcpt)
		}
	}
}

func TestRelayClientAppends(t *testing.T) {
	q := &memQueue{}
	cfg := testConfig(t, q, nil)
	v := "-ext"
	cfg.RelayClient = &v
	r := run(cfg, lines("HELO x", "MAIL FROM:<>", "RCPT TO:<user@other.example>", "RCPT TO:<u%v@w.example>",
		"RCPT TO:<x@1.2.3.4>", "DATA", "x", ".", "QUIT"))
	if got := codes(r); got != "220 250 250 250 250 553 354 250 221" {
		t.Fatalf("codes %s\n%s", got, strings.Join(r, "\n"))
	}
	if got := strings.Join(q.msgs[0].env.Rcpts, " "); got != "user@other.example-ext u%v@w.example-ext" {
		t.Errorf("rcpts %s", got)
	}
	if q.msgs[0].env.Sender != "" {
		t.Errorf("sender %q", q.msgs[0].env.Sender)
	}
}

func TestRelayByControlFiles(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		ip    string
		host  string
		from  string
		code  string
	}{
		{"relayclients", map[string]string{"relayclients": "10.1.:\n"}, "10.1.2.3", "", "a@b.example", "250"},
		{"relayclients other", map[string]string{"relayclients": "10.1.:\n"}, "10.2.2.3", "", "a@b.example", "553"},
		{"relaydomains", map[string]string{"relaydomains": ".kiosk.lan\n"}, "10.2.2.3", "pc1.kiosk.lan", "a@b.example", "250"},
		{"relaydomains other", map[string]string{"relaydomains": ".kiosk.lan\n"}, "10.2.2.3", "pc1.kiosk.lan.evil", "a@b.example", "553"},
		{"relaymailfrom", map[string]string{"relaymailfrom": "boss@b.example\n"}, "10.2.2.3", "", "Boss@B.Example", "250"},
		{"relaymailfrom domain", map[string]string{"relaymailfrom": "@b.example\n"}, "10.2.2.3", "", "anyone@b.example", "250"},
		{"relaymailfrom other", map[string]string{"relaymailfrom": "boss@b.example\n"}, "10.2.2.3", "", "boss@c.example", "553"},
	}
	for _, c := range cases {
		q := &memQueue{}
		cfg := testConfig(t, q, c.files)
		cfg.RemoteIP, cfg.RemoteHost = c.ip, c.host
		r := run(cfg, lines("HELO x", "MAIL FROM:<"+c.from+">", "RCPT TO:<u@far.example>", "QUIT"))
		if got := codes(r); got != "220 250 250 "+c.code+" 221" {
			t.Errorf("%s: %s\n%s", c.name, got, strings.Join(r, "\n"))
		}
	}
}

func TestNoRcpthostsMeansLocals(t *testing.T) {
	cfg := testConfig(t, &memQueue{}, map[string]string{"locals": "here.example\n", "virtualdomains": "virt.example:joe\n"})
	r := run(cfg, lines("HELO x", "MAIL FROM:<a@b>", "RCPT TO:<u@here.example>", "RCPT TO:<u@virt.example>",
		"RCPT TO:<u@mx.us.example>", "QUIT"))
	if got := codes(r); got != "220 250 250 250 250 553 221" {
		t.Errorf("%s\n%s", got, strings.Join(r, "\n"))
	}
}

// TestSmuggling: every end-of-data look-alike must either be data or
// end the session; none may end the message and start another.
func TestSmuggling(t *testing.T) {
	head := "EHLO x\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<u@us.example>\r\nDATA\r\nSubject: s\r\n\r\nline\r\n"
	second := "MAIL FROM:<evil@b.example>\r\nRCPT TO:<victim@us.example>\r\nDATA\r\nsmuggled\r\n.\r\n"
	cases := []struct {
		name, seq string
		fatal     bool
	}{
		{"LF.LF", "\n.\n", true},
		{"LF.CRLF", "\n.\r\n", true},
		{"CR.CRLF", "\r.\r\n", true},
		{"CRLF.CR", "\r\n.\r", true},
		{"CRLF.LF", "\r\n.\n", true},
		{"NUL.CRLF", "\r\n\x00.\r\n", true},
		{"CRLF.NUL", "\r\n.\x00\r\n", true},
		{"CRLF space.CRLF", "\r\n .\r\n", false},
		{"CRLF..CRLF", "\r\n..\r\n", false},
	}
	for _, c := range cases {
		q := &memQueue{}
		r := run(testConfig(t, q, nil), head+"x"+c.seq+second+"QUIT\r\n")
		got := codes(r)
		if c.fatal {
			if got != "220 250 250 250 354 554" {
				t.Errorf("%s: %s\n%s", c.name, got, strings.Join(r, "\n"))
			}
			if len(q.msgs) != 0 {
				t.Errorf("%s: %d messages queued", c.name, len(q.msgs))
			}
			continue
		}
		// Not an end of data: everything up to the real end is one message.
		if len(q.msgs) != 1 || !strings.Contains(q.msgs[0].msg, "smuggled") || len(q.msgs[0].env.Rcpts) != 1 {
			t.Errorf("%s: %s, %d messages %+v", c.name, got, len(q.msgs), q.msgs)
		}
	}
}

func TestBareLFInCommand(t *testing.T) {
	q := &memQueue{}
	r := run(testConfig(t, q, nil), "HELO x\r\nMAIL FROM:<a@b>\nRCPT TO:<u@us.example>\r\n")
	if got := codes(r); got != "220 250 554" {
		t.Errorf("%s\n%s", got, strings.Join(r, "\n"))
	}
}

func TestDatabytes(t *testing.T) {
	q := &memQueue{}
	cfg := testConfig(t, q, nil)
	cfg.DataBytes = 100
	big := strings.Repeat("0123456789\r\n", 20)
	r := run(cfg, lines("EHLO x", "MAIL FROM:<a@b> SIZE=1000", "MAIL FROM:<a@b> SIZE=50", "RCPT TO:<u@us.example>", "DATA")+big+
		lines(".", "MAIL FROM:<a@b>", "RCPT TO:<u@us.example>", "DATA", "small", ".", "QUIT"))
	if got := codes(r); got != "220 250 552 250 250 354 552 250 250 354 250 221" {
		t.Errorf("%s\n%s", got, strings.Join(r, "\n"))
	}
	if len(q.msgs) != 1 || q.aborted != 1 {
		t.Errorf("%d queued, %d aborted", len(q.msgs), q.aborted)
	}
}

func TestMaxRcpt(t *testing.T) {
	q := &memQueue{}
	cfg := testConfig(t, q, nil)
	cfg.MaxRcpt = 2
	r := run(cfg, lines("HELO x", "MAIL FROM:<a@b>", "RCPT TO:<a@us.example>", "RCPT TO:<b@us.example>",
		"RCPT TO:<c@us.example>", "DATA", "x", ".", "QUIT"))
	if got := codes(r); got != "220 250 250 250 250 452 354 250 221" {
		t.Errorf("%s\n%s", got, strings.Join(r, "\n"))
	}
	if len(q.msgs[0].env.Rcpts) != 2 {
		t.Errorf("rcpts %v", q.msgs[0].env.Rcpts)
	}
}

func TestLongLines(t *testing.T) {
	q := &memQueue{}
	long := strings.Repeat("x", 1001)
	ok := strings.Repeat("y", 998)
	r := run(testConfig(t, q, nil), lines("HELO "+long, "HELO x", "MAIL FROM:<a@b>", "RCPT TO:<a@us.example>",
		"DATA", ok, long, "after", ".", "MAIL FROM:<a@b>", "RCPT TO:<a@us.example>", "DATA", ok, ".", "QUIT"))
	if got := codes(r); got != "220 500 250 250 250 354 554 250 250 354 250 221" {
		t.Errorf("%s\n%s", got, strings.Join(r, "\n"))
	}
	if len(q.msgs) != 1 {
		t.Errorf("%d queued", len(q.msgs))
	}
}

// A 998-octet text line that starts with a dot travels as 999 octets
// after dot-stuffing, and must be taken (RFC 5321 4.5.3.1.6); one octet
// more of text is too long.
func TestLongDotStuffedLine(t *testing.T) {
	q := &memQueue{}
	text := "." + strings.Repeat("d", 997)
	over := "." + strings.Repeat("e", 998)
	r := run(testConfig(t, q, nil), lines("HELO x", "MAIL FROM:<a@b>", "RCPT TO:<a@us.example>", "DATA", "."+text, ".",
		"MAIL FROM:<a@b>", "RCPT TO:<a@us.example>", "DATA", "."+over, ".", "QUIT"))
	if got := codes(r); got != "220 250 250 250 354 250 250 250 354 554 221" {
		t.Errorf("%s\n%s", got, strings.Join(r, "\n"))
	}
	if len(q.msgs) != 1 || !strings.Contains(q.msgs[0].msg, "\n"+text+"\n") {
		t.Errorf("queued %d: %+v", len(q.msgs), q.msgs)
	}
}

func TestReceivedLoop(t *testing.T) {
	q := &memQueue{}
	hdr := strings.Repeat("Received: from a by b; date\r\n", 101)
	r := run(testConfig(t, q, nil), lines("HELO x", "MAIL FROM:<a@b>", "RCPT TO:<a@us.example>", "DATA")+hdr+
		lines("", "body", ".", "MAIL FROM:<a@b>", "RCPT TO:<a@us.example>", "DATA")+
		strings.Repeat("received: x\r\n", 100)+lines("", "body", ".", "QUIT"))
	if got := codes(r); got != "220 250 250 250 354 554 250 250 354 250 221" {
		t.Errorf("%s\n%s", got, strings.Join(r, "\n"))
	}
	if len(q.msgs) != 1 {
		t.Errorf("%d queued", len(q.msgs))
	}
}

func TestQueueFailure(t *testing.T) {
	for _, c := range []struct {
		exit int
		code string
	}{{53, "451"}, {81, "451"}, {31, "554"}, {11, "554"}} {
		q := &memQueue{code: c.exit}
		r := run(testConfig(t, q, nil), lines("HELO x", "MAIL FROM:<a@b>", "RCPT TO:<a@us.example>", "DATA", "x", ".",
			"MAIL FROM:<a@b>", "QUIT"))
		if got := codes(r); got != "220 250 250 250 354 "+c.code+" 250 221" {
			t.Errorf("exit %d: %s\n%s", c.exit, got, strings.Join(r, "\n"))
		}
	}
	q := &memQueue{}
	cfg := testConfig(t, q, nil)
	cfg.Queue = func() (Sink, error) { return nil, errors.New("no such program") }
	r := run(cfg, lines("HELO x", "MAIL FROM:<a@b>", "RCPT TO:<a@us.example>", "DATA", "x", ".", "QUIT"))
	// DATA is refused before 354, so the message lines are commands.
	if got := codes(r); got != "220 250 250 250 451 500 500 221" {
		t.Errorf("no queue program: %s\n%s", got, strings.Join(r, "\n"))
	}
}

func TestSequenceAndUnknown(t *testing.T) {
	r := run(testConfig(t, &memQueue{}, nil), lines("RCPT TO:<a@us.example>", "DATA", "MAIL FROM:<a@b>", "MAIL FROM:<a@b>",
		"DATA", "RSET", "NOOP", "VRFY x", "HELP", "FOO", "STARTTLS", "AUTH PLAIN", "QUIT"))
	if got := codes(r); got != "220 503 503 250 503 503 250 250 252 214 500 502 502 221" {
		t.Errorf("%s\n%s", got, strings.Join(r, "\n"))
	}
	// VRFY and EXPN: 252, or 501 without an argument; TURN and ETRN
	// are known but not offered: 502 (RFC 5321 3.5.3, 4.1.1.6, 4.2.4).
	r = run(testConfig(t, &memQueue{}, nil), lines("EHLO x", "VRFY x", "EXPN staff", "VRFY", "EXPN ", "TURN", "ETRN x", "QUIT"))
	if got := codes(r); got != "220 250 252 252 501 501 502 502 221" {
		t.Errorf("%s\n%s", got, strings.Join(r, "\n"))
	}
}

func TestTooManyErrors(t *testing.T) {
	r := run(testConfig(t, &memQueue{}, nil), strings.Repeat("FOO\r\n", 20))
	if got := codes(r); got != "220 500 500 500 500 500 500 500 500 500 421" {
		t.Errorf("%s", got)
	}
}

func TestHTTP(t *testing.T) {
	for _, req := range []string{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "POST /x HTTP/1.0\r\n", "CONNECT a:25 HTTP/1.1\r\n"} {
		r := run(testConfig(t, &memQueue{}, nil), req+"HELO x\r\n")
		if got := codes(r); got != "220 554" {
			t.Errorf("%q: %s", req, got)
		}
	}
}

func TestAuthRequiredWithoutTLS(t *testing.T) {
	cfg := testConfig(t, &memQueue{}, nil)
	cfg.AuthRequired = true
	cfg.Auth = func(u, p string) AuthResult { return AuthOK }
	r := run(cfg, lines("EHLO x", "AUTH PLAIN AHUAcA==", "MAIL FROM:<a@b>", "QUIT"))
	if got := codes(r); got != "220 250 538 530 221" {
		t.Errorf("%s\n%s", got, strings.Join(r, "\n"))
	}
}

func TestPipelinedAfterSTARTTLS(t *testing.T) {
	cfg := testConfig(t, &memQueue{}, nil)
	cfg.TLS = testTLS(t)
	r := run(cfg, lines("EHLO x", "STARTTLS", "MAIL FROM:<a@b>", "RCPT TO:<u@far.example>"))
	if got := codes(r); got != "220 250 554" {
		t.Errorf("%s\n%s", got, strings.Join(r, "\n"))
	}
}

// TestLenientSyntax: omail-smtpd is as lenient as qmail-smtpd where RFC
// 5321 is strict but nothing is at stake: HELO without a name, a sender
// without a domain, a path without angle brackets. It is strict where
// relaying or the envelope's meaning is at stake (TestRelay).
func TestLenientSyntax(t *testing.T) {
	q := &memQueue{}
	r := run(testConfig(t, q, nil), lines("HELO", "MAIL FROM:<user>", "RCPT TO:<a@us.example>", "DATA", "x", ".",
		"EHLO", "MAIL FROM:user@b.example", "RCPT TO:a@us.example", "DATA", "y", ".", "QUIT"))
	if got, want := codes(r), "220 250 250 250 354 250 250 250 250 354 250 221"; got != want {
		t.Fatalf("codes %s, want %s\n%s", got, want, strings.Join(r, "\n"))
	}
	if len(q.msgs) != 2 || q.msgs[0].env.Sender != "user" || q.msgs[1].env.Sender != "user@b.example" {
		t.Fatalf("queued %+v", q.msgs)
	}
	if !strings.HasPrefix(q.msgs[0].msg, "Received: from unknown ([192.0.2.1])") {
		t.Errorf("Received line for HELO without a name: %q", q.msgs[0].msg)
	}
}

// TestSMTPUTF8: UTF-8 addresses only in a transaction that gave SMTPUTF8
// (RFC 6531 3.5: 553 5.6.7 otherwise, never a downgrade); UTF-8 header
// fields pass as they are (RFC 6532); the domain is ours in U-labels and
// in A-labels alike; the Received line says UTF8SMTP.
func TestSMTPUTF8(t *testing.T) {
	q := &memQueue{}
	cfg := testConfig(t, q, map[string]string{"rcpthosts": "us.example\nbücher.example\nxn--mller-kva.example\n"})
	r := run(cfg, lines("EHLO x",
		"MAIL FROM:<jürgen@b.example>", // 553: no SMTPUTF8
		"MAIL FROM:<a@b.example>",
		"RCPT TO:<jörg@us.example>",            // 553: no SMTPUTF8
		"RCPT TO:<user@bücher.example>",        // 553: no SMTPUTF8
		"RCPT TO:<user@xn--bcher-kva.example>", // A-labels need nothing
		"RSET",
		"MAIL FROM:<jürgen@b.example> SMTPUTF8 BODY=8BITMIME",
		"RCPT TO:<jörg@us.example>",
		"RCPT TO:<user@BÜCHER.example>",
		"RCPT TO:<user@müller.example>", // listed as A-labels
		"RCPT TO:<user@bucher.example>", // another domain: 553 5.7.1
		"DATA", "Subject: Grüße", "From: Jürgen <jürgen@b.example>", "", "Hallo", ".",
		"MAIL FROM:<a@b.example> SMTPUTF8=yes", // 501
		"QUIT"))
	if got, want := codes(r), "220 250 553 250 553 553 250 250 250 250 250 250 553 354 250 501 221"; got != want {
		t.Fatalf("codes %s, want %s\n%s", got, want, strings.Join(r, "\n"))
	}
	all := strings.Join(r, "\n")
	if !strings.Contains(all, "250-SMTPUTF8") || !strings.Contains(all, "553 5.6.7 a UTF-8 sender") ||
		!strings.Contains(all, "553 5.6.7 a UTF-8 recipient") {
		t.Errorf("replies:\n%s", all)
	}
	if len(q.msgs) != 1 {
		t.Fatalf("%d messages queued", len(q.msgs))
	}
	m := q.msgs[0]
	if got := strings.Join(m.env.Rcpts, " "); m.env.Sender != "jürgen@b.example" ||
		got != "jörg@us.example user@bücher.example user@müller.example" {
		t.Errorf("envelope %q %q", m.env.Sender, got)
	}
	if !strings.Contains(m.msg, "with UTF8SMTP id ID") || !strings.Contains(m.msg, "\nSubject: Grüße\nFrom: Jürgen <jürgen@b.example>\n\nHallo\n") {
		t.Errorf("message %q", m.msg)
	}
}

// The "accepted" log line is the record of every recipient: each address
// is cleaned by itself, and the list is not cut at the limit of one.
func TestAcceptedLogNamesEveryRecipient(t *testing.T) {
	cfg := testConfig(t, &memQueue{}, nil)
	var log strings.Builder
	cfg.Log = &log
	in := []string{"EHLO x", "MAIL FROM:<>"}
	for i := 1; i <= 60; i++ {
		in = append(in, fmt.Sprintf("RCPT TO:<u%d@us.example>", i))
	}
	in = append(in, "DATA", "Subject: x", "", "body", ".", "QUIT")
	run(cfg, lines(in...))
	line := ""
	for _, l := range strings.Split(log.String(), "\n") {
		if strings.Contains(l, "accepted id=") {
			line = l
		}
	}
	if !strings.Contains(line, "u1@us.example,u2@us.example,") || !strings.Contains(line, ",u60@us.example>") {
		t.Errorf("accepted line: %q", line)
	}
}
