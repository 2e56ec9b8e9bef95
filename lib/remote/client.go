// Package remote delivers one queued message to one SMTP destination
// (a relay from smtproutes, or a domain's MX hosts) and says, recipient
// by recipient, what became of it. Scheduling, retries and bounces are
// the queue manager's; this package only speaks SMTP.
//
// The SMTP conversation is written here (reply.go reads the replies)
// rather than with go-smtp's client, which (v0.25) cannot send STARTTLS
// after an EHLO with our own name and always adds BODY=8BITMIME.
package remote

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"omail/lib/crashpoint"
	"os"
	"strconv"
	"strings"
	"time"

	"omail/lib/addr"
	"omail/lib/control"
	"omail/lib/dkim"
	"omail/lib/masquerade"
	"omail/lib/outcome"
	"omail/lib/route"
)

// Result is the outcome for one recipient: Status and Text (a one-line
// account for logs and bounces, e.g. "127.0.0.1 said: 550 5.1.1 no such
// user"), with the recipient and the host that gave the answer.
type Result struct {
	Rcpt string
	outcome.Result
	Host string // the host that gave the answer, if one did
}

func result(rcpt string, st outcome.Status, text, host string) Result {
	return Result{Rcpt: rcpt, Result: outcome.Result{Status: st, Text: text}, Host: host}
}

// Client delivers messages by SMTP. Its zero value works (with the
// system resolver and no timeouts); set at least Helo.
type Client struct {
	Helo           string         // name in EHLO/HELO; "localhost" if empty
	Resolver       route.Resolver // nil: net.DefaultResolver
	ConnectTimeout time.Duration  // timeoutconnect; 0: none
	CommandTimeout time.Duration  // timeoutremote: silence allowed on every read and write; 0: none
	// TLSConfig is the base for STARTTLS (RootCAs, client certificates).
	// Opportunistic TLS does not verify the peer's certificate (an
	// unverified encryption still beats plain text, and refusing would
	// send the mail in clear); a Dest with RequireTLS verifies it
	// against the host name from smtproutes or the MX record.
	TLSConfig *tls.Config
	// Dial opens connections; nil: a net.Dialer with ConnectTimeout.
	Dial       func(ctx context.Context, network, addr string) (net.Conn, error)
	Masquerade *masquerade.Map // sender rewriting on the way out; nil: none
	DKIM       *dkim.Keys      // signing keys (dkimkeys); nil: nothing is signed
	Backoff    *Backoff        // hosts that recently failed are skipped; nil: none
	Limiter    *Limiter        // connections per host and in all; nil: unbounded
	// Shuffle orders MX hosts of equal preference; nil: random.
	Shuffle func(n int, swap func(i, j int))
	// Open opens the message each time it is read; nil: os.Open. An
	// unprivileged child delivering a message its parent opened for it
	// reads it from that descriptor instead (set by delivercmd's
	// runRemoteChild to a reader of fd 0).
	Open func(path string) (io.ReadCloser, error)
}

// crash is the test hooks of the process (lib/crashpoint): the queue
// manager runs the client without handing it any.
var crash = crashpoint.Process

func (c *Client) open(path string) (io.ReadCloser, error) {
	if c.Open != nil {
		return c.Open(path)
	}
	return os.Open(path)
}

// FromControl makes a Client from the control files: helohost (default
// me), timeoutconnect, timeoutremote, masquerade and dkimkeys. Routes
// are read separately with route.Load.
func FromControl(ctl *control.Dir) (*Client, error) {
	helo, err := ctl.Line("helohost")
	if err != nil {
		return nil, err
	}
	tc, err := ctl.Int("timeoutconnect")
	if err != nil {
		return nil, err
	}
	tr, err := ctl.Int("timeoutremote")
	if err != nil {
		return nil, err
	}
	m, err := masquerade.Load(ctl)
	if err != nil {
		return nil, err
	}
	keys, err := dkim.Load(ctl)
	if err != nil {
		return nil, err
	}
	return &Client{
		Helo:           helo,
		ConnectTimeout: time.Duration(tc) * time.Second,
		CommandTimeout: time.Duration(tr) * time.Second,
		Masquerade:     m,
		DKIM:           keys,
	}, nil
}

func (c *Client) resolver() route.Resolver {
	if c.Resolver != nil {
		return c.Resolver
	}
	return net.DefaultResolver
}

// message is what Deliver learns about the message before it connects.
type message struct {
	open     func() (io.ReadCloser, error) // the bytes, each time they are read
	size     int64                         // bytes on the wire, before dot-stuffing
	eightBit bool
	// header8bit: the header holds 8-bit bytes, which need SMTPUTF8
	// (RFC 6532) at the next hop.
	header8bit bool
	sig        []byte // DKIM-Signature fields to send first; nil: unsigned

	// The message made 7-bit for a next hop without 8BITMIME, made by
	// the first session that needs it and kept for the next hosts
	// (sevenbit.go); sevenFile holds its bytes, unlinked.
	seven     *message
	sevenErr  error
	sevenFile *os.File
}

// close releases the 7-bit copy, if one was made.
func (m *message) close() {
	if m.sevenFile != nil {
		m.sevenFile.Close()
	}
}

// Deliver sends the message in msgPath from sender to rcpts, all of
// which route to dest, in one SMTP transaction (more on the same
// connection when the server refuses some for too many recipients,
// RFC 5321 4.5.3.1.10), and returns one Result per recipient in the
// order given. It tries the destination's hosts in order and goes on to
// the next one when a host cannot be reached, does not greet, or answers
// 4xx to EHLO or the first MAIL; once a host has taken the transaction,
// its answers are final for this attempt.
func (c *Client) Deliver(ctx context.Context, dest route.Dest, msgPath string, sender string, rcpts []string) []Result {
	res := make([]Result, len(rcpts))
	for i, r := range rcpts {
		res[i] = result(r, outcome.Temp, "", "")
	}
	all := func(s outcome.Status, text, host string) []Result {
		for i := range res {
			res[i].Status, res[i].Text, res[i].Host = s, text, host
		}
		return res
	}
	if dest.Wait != "" {
		// Routing could not be trusted (smtpauth): nothing is tried.
		return all(outcome.Temp, dest.Wait, "")
	}
	// The sender as sent; the recursion below is given the sender as
	// queued, so that it is masqueraded once (a chain of masquerade
	// lines must not rewrite it twice).
	masqueraded := c.Masquerade.Address(sender)
	if !sendable(masqueraded) {
		return all(outcome.Perm, fmt.Sprintf("5.1.7 sender address %q cannot be sent by SMTP", masqueraded), "")
	}
	var good []string // the recipients worth a connection
	var goodIdx []int
	for i, r := range rcpts {
		if !sendable(r) || r == "" {
			res[i] = result(r, outcome.Perm, fmt.Sprintf("5.1.3 address %q cannot be sent by SMTP", r), "")
			continue
		}
		good, goodIdx = append(good, r), append(goodIdx, i)
	}
	if len(good) == 0 {
		return res
	}
	if len(good) < len(rcpts) {
		sub := c.Deliver(ctx, dest, msgPath, sender, good)
		for j, i := range goodIdx {
			res[i] = sub[j]
		}
		return res
	}
	sender = masqueraded
	msg, err := c.measure(func() (io.ReadCloser, error) { return c.open(msgPath) })
	if err != nil {
		// A message that needs a signature it cannot get waits (or
		// bounces, if it never can) rather than going out unsigned.
		var de *dkim.Error
		if errors.As(err, &de) {
			st := outcome.Temp
			if de.Perm {
				st = outcome.Perm
			}
			return all(st, de.Msg, "")
		}
		return all(outcome.Temp, "4.3.0 cannot read the message: "+err.Error(), "")
	}
	defer msg.close()
	if until, ok := c.Backoff.Until(dest.Key()); ok {
		return all(outcome.Temp, fmt.Sprintf("4.4.1 %s failed recently; not before %s", dest, until.UTC().Format(time.RFC3339)), "")
	}
	hosts, err := route.Hosts(ctx, c.resolver(), dest, c.Shuffle)
	if err != nil {
		var re *route.Error
		if errors.As(err, &re) && re.Perm {
			return all(outcome.Perm, re.Msg, "")
		}
		return all(outcome.Temp, err.Error(), "")
	}
	last := "4.4.1 no host to try"
	for _, h := range hosts {
		addrs, err := route.Addrs(ctx, c.resolver(), h)
		if err != nil {
			last = err.Error()
			continue
		}
		for _, a := range addrs {
			hostport := net.JoinHostPort(a, strconv.Itoa(h.Port))
			if until, ok := c.Backoff.Until(hostport); ok {
				last = fmt.Sprintf("4.4.1 %s (%s) failed recently; not before %s", h.Name, hostport, until.UTC().Format(time.RFC3339))
				continue
			}
			if Stopping(ctx) {
				return all(outcome.Temp, "4.4.2 delivery interrupted", "")
			}
			wait, done := UntilStop(ctx)
			release, err := c.Limiter.Acquire(wait, hostport)
			done()
			if err != nil {
				return all(outcome.Temp, "4.4.2 delivery interrupted", "")
			}
			s := &session{c: c, dest: dest, host: h.Name, addr: hostport, msg: msg, sender: sender, rcpts: rcpts, res: res}
			next, text := s.run(ctx)
			release()
			if !next {
				c.Backoff.Succeeded(dest.Key())
				return res
			}
			last = text
		}
	}
	// No host took the mail; the hosts that could not be reached are
	// in back-off already, and so is the destination as a whole.
	c.Backoff.Failed(dest.Key())
	return all(outcome.Temp, last, "")
}

// measure reads the message once through the same conversion it gets
// on the wire, to learn its size for SIZE= and whether it is 8-bit, and
// to sign it: the DKIM body hash is over these bytes, which send then
// reads again from the file (the message is never held in memory).
// The signature fields count in the size.
func (c *Client) measure(open func() (io.ReadCloser, error)) (*message, error) {
	f, err := open()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	signer := c.DKIM.NewSigner()
	defer signer.Abort()
	ww := newWireWriter(signer, false)
	var hs headerScan
	if _, err := c.Masquerade.Copy(io.MultiWriter(ww, &hs), f); err != nil {
		return nil, err
	}
	if err := ww.Finish(); err != nil {
		return nil, err
	}
	sig, err := signer.Finish()
	if err != nil {
		return nil, err
	}
	return &message{open: open, size: ww.n + int64(len(sig)), eightBit: ww.eightBit, header8bit: hs.eightBit, sig: sig}, nil
}

// sendable reports whether an address can go in MAIL or RCPT: no line
// breaks or NUL anywhere, nothing in the domain that would end the path,
// within the RFC 5321 line. The local part may hold anything else: it is
// quoted on the wire (addr.ForSMTP), so it cannot smuggle parameters.
func sendable(a string) bool {
	_, domain := addr.Split(a)
	return !strings.ContainsAny(a, "\r\n\x00") && !strings.ContainsAny(domain, " <>\"\\") && len(a) <= 900
}

// oneLine squeezes a possibly multi-line SMTP reply into one line.
func oneLine(code int, msg string) string {
	if msg == "" {
		return strconv.Itoa(code)
	}
	return strconv.Itoa(code) + " " + strings.ReplaceAll(msg, "\n", " / ")
}

// timeoutConn sets a fresh deadline before every read and write, so
// that timeoutremote bounds each silence, not the whole transfer.
type timeoutConn struct {
	net.Conn
	d time.Duration
}

func (t *timeoutConn) Read(b []byte) (int, error) {
	if t.d > 0 {
		t.Conn.SetDeadline(time.Now().Add(t.d))
	}
	return t.Conn.Read(b)
}

func (t *timeoutConn) Write(b []byte) (int, error) {
	if t.d > 0 {
		t.Conn.SetDeadline(time.Now().Add(t.d))
	}
	return t.Conn.Write(b)
}

func (c *Client) dial(ctx context.Context, addr string) (net.Conn, error) {
	if c.ConnectTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.ConnectTimeout)
		defer cancel()
	}
	if c.Dial != nil {
		return c.Dial(ctx, "tcp", addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

// session is one SMTP connection to one host address.
type session struct {
	c      *Client
	dest   route.Dest
	host   string // name, for TLS and messages
	addr   string // address:port
	msg    *message
	sender string
	rcpts  []string
	res    []Result

	conn *timeoutConn
	tp   *smtpConn
	ext  map[string]string
	tls  bool
}

// errNext is a failure that sends Deliver on to the next host.
type errNext struct{ text string }

func (e *errNext) Error() string { return e.text }

// run holds the conversation. It returns next=true (with the reason)
// when Deliver should try the next host; otherwise s.res is filled.
func (s *session) run(ctx context.Context) (next bool, text string) {
	err := s.converse(ctx, false)
	var tlsErr *tlsFailure
	if errors.As(err, &tlsErr) && !s.dest.RequireTLS {
		if Stopping(ctx) {
			// Nothing was sent; a new connection is new work.
			s.setAll(outcome.Temp, "4.4.2 delivery interrupted")
			return false, ""
		}
		// STARTTLS was offered but did not work; as other MTAs do,
		// deliver in plain text rather than not at all.
		err = s.converse(ctx, true)
	}
	var nx *errNext
	if errors.As(err, &nx) {
		return true, nx.text
	}
	return false, ""
}

type tlsFailure struct{ err error }

func (e *tlsFailure) Error() string { return "TLS: " + e.err.Error() }

func (s *session) setAll(st outcome.Status, text string) {
	for i := range s.res {
		s.res[i].Status, s.res[i].Text, s.res[i].Host = st, text, s.host
	}
}

// set gives the recipients idx (indexes into s.rcpts) one result.
func (s *session) set(idx []int, st outcome.Status, text string) {
	for _, i := range idx {
		s.res[i] = result(s.rcpts[i], st, text, s.host)
	}
}

func (s *session) said(code int, msg string) string {
	return fmt.Sprintf("%s said: %s", s.host, oneLine(code, msg))
}

// converse connects and speaks SMTP. An *errNext or *tlsFailure means
// nothing was decided; any other return has set s.res.
func (s *session) converse(ctx context.Context, noTLS bool) error {
	nc, err := s.c.dial(ctx, s.addr)
	if err != nil {
		s.c.Backoff.Failed(s.addr)
		return &errNext{fmt.Sprintf("4.4.1 cannot connect to %s (%s): %v", s.host, s.addr, err)}
	}
	s.conn = &timeoutConn{Conn: nc, d: s.c.CommandTimeout}
	s.tp = newSMTPConn(s.conn)
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer func() {
		stop()
		nc.Close()
	}()

	code, msg, err := s.reply()
	if err != nil {
		s.c.Backoff.Failed(s.addr)
		return &errNext{fmt.Sprintf("4.4.2 %s (%s) did not greet: %v", s.host, s.addr, err)}
	}
	if code/100 == 4 {
		s.c.Backoff.Failed(s.addr)
		return &errNext{"4.4.2 " + s.said(code, msg)}
	}
	if code/100 != 2 {
		// As qmail: a host that refuses service outright is a
		// temporary failure of this delivery, not a bounce.
		s.quit()
		s.setAll(outcome.Temp, "4.4.2 greeting failed: "+s.said(code, msg))
		return nil
	}
	s.c.Backoff.Succeeded(s.addr)
	if err := s.hello(); err != nil {
		return err
	}
	if _, ok := s.ext["STARTTLS"]; ok && !noTLS {
		if err := s.startTLS(ctx); err != nil {
			return err
		}
	}
	if s.dest.RequireTLS && !s.tls {
		s.quit()
		return &errNext{fmt.Sprintf("4.7.10 %s (%s) offers no TLS, which the route requires", s.host, s.addr)}
	}
	if s.dest.Auth != nil {
		if ok, err := s.auth(); !ok {
			return err
		}
	}
	return s.transaction(ctx)
}

func (s *session) reply() (int, string, error) {
	return readReply(s.tp.r)
}

func (s *session) cmd(format string, args ...any) (int, string, error) {
	if err := s.tp.printfLine(format, args...); err != nil {
		return 0, "", err
	}
	return s.reply()
}

// quitWait bounds the writing of QUIT.
const quitWait = 10 * time.Second

// quit says QUIT and does not wait for the answer, as qmail-remote: it
// is called once the outcome is known (after the end-of-data reply the
// peer has the message), and waiting up to timeoutremote for a reply
// that changes nothing would only hold the connection and delay the
// record of the delivery (a crash meanwhile would send the message
// again). The connection is closed by converse.
func (s *session) quit() {
	if s.conn.d == 0 || s.conn.d > quitWait {
		s.conn.d = quitWait
	}
	s.tp.printfLine("QUIT")
}

func (s *session) lost(err error) error {
	return &errNext{fmt.Sprintf("4.4.2 connection to %s (%s) failed: %v", s.host, s.addr, err)}
}

// hello says EHLO, or HELO to a peer that does not know EHLO.
func (s *session) hello() error {
	helo := s.c.Helo
	if helo == "" {
		helo = "localhost"
	}
	code, msg, err := s.cmd("EHLO %s", helo)
	if err != nil {
		return s.lost(err)
	}
	s.ext = map[string]string{}
	if code/100 == 2 {
		lines := strings.Split(msg, "\n")
		for _, l := range lines[1:] {
			k, v, _ := strings.Cut(l, " ")
			s.ext[strings.ToUpper(k)] = v
		}
		return nil
	}
	if code/100 == 5 {
		code, msg, err = s.cmd("HELO %s", helo)
		if err != nil {
			return s.lost(err)
		}
		if code/100 == 2 {
			return nil
		}
	}
	s.quit()
	return &errNext{"4.4.2 HELO refused: " + s.said(code, msg)}
}

func (s *session) startTLS(ctx context.Context) error {
	code, msg, err := s.cmd("STARTTLS")
	if err != nil {
		return s.lost(err)
	}
	if code != 220 {
		if s.dest.RequireTLS {
			s.quit()
			return &errNext{"4.7.10 STARTTLS refused: " + s.said(code, msg)}
		}
		return nil // go on in plain text
	}
	cfg := &tls.Config{}
	if s.c.TLSConfig != nil {
		cfg = s.c.TLSConfig.Clone()
	}
	name := s.host
	if a, err := route.LiteralAddr(name); err == nil {
		name = a.String()
	}
	cfg.ServerName = name
	cfg.InsecureSkipVerify = !s.dest.RequireTLS
	tc := tls.Client(s.conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		if s.dest.RequireTLS {
			return &errNext{fmt.Sprintf("4.7.5 TLS with %s (%s) failed: %v", s.host, s.addr, err)}
		}
		return &tlsFailure{err}
	}
	// A fresh reader: anything the peer sent after its 220 in plain
	// text (a command injection) is dropped, as RFC 3207 asks.
	s.tp = newSMTPConn(tc)
	s.tls = true
	return s.hello()
}

// auth logs in to a smart host, only ever over TLS, with PLAIN when
// offered, else LOGIN. A refusal defers the mail: the password is the
// administrator's to fix, not the sender's fault. ok is false when the
// transaction must not go on (s.res set, or err says why).
func (s *session) auth() (ok bool, err error) {
	if !s.tls {
		s.quit()
		return false, &errNext{"4.7.10 will not send a password without TLS to " + s.host}
	}
	mechs := " " + strings.ToUpper(s.ext["AUTH"]) + " "
	cr := s.dest.Auth
	b64 := base64.StdEncoding.EncodeToString
	var code int
	var msg string
	switch {
	case strings.Contains(mechs, " PLAIN "):
		code, msg, err = s.cmd("AUTH PLAIN %s", b64([]byte("\x00"+cr.User+"\x00"+cr.Password)))
	case strings.Contains(mechs, " LOGIN "):
		code, msg, err = s.cmd("AUTH LOGIN")
		if err == nil && code == 334 {
			code, msg, err = s.cmd("%s", b64([]byte(cr.User)))
		}
		if err == nil && code == 334 {
			code, msg, err = s.cmd("%s", b64([]byte(cr.Password)))
		}
	default:
		s.quit()
		s.setAll(outcome.Temp, fmt.Sprintf("4.7.0 %s offers neither AUTH PLAIN nor LOGIN", s.host))
		return false, nil
	}
	if err != nil {
		return false, s.lost(err)
	}
	if code != 235 {
		s.quit()
		s.setAll(outcome.Temp, "4.7.0 AUTH failed: "+s.said(code, msg))
		return false, nil
	}
	return true, nil
}

// status maps a reply code to a recipient status.
func status(code int) outcome.Status {
	switch code / 100 {
	case 2:
		return outcome.OK
	case 5:
		return outcome.Perm
	}
	return outcome.Temp
}

// transaction sends the message to the recipients: MAIL, RCPT for each,
// DATA. A server that takes only so many recipients in a transaction
// refuses the others with 452 (RFC 5321 4.5.3.1.10); they get another
// transaction on the same connection once this one is over, and so on
// while each transaction delivers to somebody (mailTransaction says
// when).
func (s *session) transaction(ctx context.Context) error {
	_, utf8ok := s.ext["SMTPUTF8"]
	needUTF8 := !addr.ASCII(s.sender)
	if needUTF8 && !utf8ok {
		s.quit()
		s.setAll(outcome.Perm, fmt.Sprintf("5.6.7 the sender address is not ASCII, which requires SMTPUTF8, and %s does not offer it", s.host))
		return nil
	}
	var active []int // indexes of the recipients sent to this host
	for i, r := range s.rcpts {
		if !addr.ASCII(r) {
			if !utf8ok {
				s.res[i] = result(r, outcome.Perm, fmt.Sprintf("5.6.7 the address is not ASCII, which requires SMTPUTF8, and %s does not offer it", s.host), s.host)
				continue
			}
			needUTF8 = true
		}
		active = append(active, i)
	}
	if len(active) == 0 {
		s.quit()
		return nil
	}
	if s.msg.header8bit && utf8ok {
		// UTF-8 header fields (RFC 6532): the next hop is told. One
		// that does not offer SMTPUTF8 gets the header as it is when
		// it offers 8BITMIME, as before and as most MTAs do.
		needUTF8 = true
	}
	m := s.msg
	if _, ok := s.ext["8BITMIME"]; m.eightBit && !ok {
		// RFC 6152: only 7-bit data to this host. Converted, or
		// refused for what cannot be converted (8-bit headers
		// without SMTPUTF8): never sent as it is.
		var st outcome.Status
		var text string
		if m, st, text = s.c.sevenBitMessage(s.msg, utf8ok); m == nil {
			s.quit()
			s.set(active, st, text+" ("+s.host+" does not offer 8BITMIME)")
			return nil
		}
	}
	mail := "MAIL FROM:<" + addr.ForSMTP(s.sender) + ">"
	if v, ok := s.ext["SIZE"]; ok {
		if limit, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && limit > 0 && m.size > limit {
			s.quit()
			s.set(active, outcome.Perm, fmt.Sprintf("5.3.4 the message (%d bytes) is larger than %s accepts (%d)", m.size, s.host, limit))
			return nil
		}
		mail += " SIZE=" + strconv.FormatInt(m.size, 10)
	}
	if _, ok := s.ext["8BITMIME"]; ok && m.eightBit {
		mail += " BODY=8BITMIME"
	}
	if needUTF8 {
		mail += " SMTPUTF8"
	}

	pending := active
	for first := true; len(pending) > 0; first = false {
		if !first && Stopping(ctx) {
			// Nothing new after a stop: the rest keep their 452.
			break
		}
		var open bool
		var err error
		if pending, open, err = s.mailTransaction(m, mail, pending, first); err != nil || !open {
			return err
		}
	}
	s.quit()
	return nil
}

// tooMany reports whether a RCPT reply refuses the recipient for this
// transaction only, for too many recipients: 452, another 4xx with the
// enhanced status 4.5.3 (RFC 3463), or 552 with 5.5.3, the code RFC 821
// gave it, which RFC 5321 4.5.3.1.10 asks clients to take as 452.
func tooMany(code int, msg string) bool {
	enhanced := func(st string) bool {
		return msg == st || strings.HasPrefix(msg, st+" ") || strings.HasPrefix(msg, st+"\n")
	}
	return code == 452 || code/100 == 4 && enhanced("4.5.3") || code == 552 && enhanced("5.5.3")
}

// mailTransaction sends one transaction of the message m to the
// recipients idx (indexes into s.rcpts) and sets their results. retry
// is the recipients refused with tooMany, for another transaction: only
// when this one delivered to some recipient or was refused for good at
// the end of data (the next one then gets its own answer); when nobody
// was accepted, DATA was refused or the end of data deferred, they keep
// their 452 and wait for the next attempt. open is false when the connection
// cannot be used any more (no QUIT then).
//
// In the first transaction a failure of MAIL (4xx, or the connection
// lost) is an *errNext: nothing is decided, and Deliver tries the next
// host. In a later one it defers the recipients left, since others
// have had their answer from this host already.
func (s *session) mailTransaction(m *message, mail string, idx []int, first bool) (retry []int, open bool, err error) {
	lost := func(err error) ([]int, bool, error) {
		if first {
			return nil, false, s.lost(err)
		}
		s.set(idx, outcome.Temp, fmt.Sprintf("4.4.2 connection to %s (%s) lost at MAIL: %v", s.host, s.addr, err))
		return nil, false, nil
	}
	_, pipelining := s.ext["PIPELINING"]
	w := s.tp.w
	if pipelining {
		fmt.Fprintf(w, "%s\r\n", mail)
		for _, i := range idx {
			fmt.Fprintf(w, "RCPT TO:<%s>\r\n", addr.ForSMTP(s.rcpts[i]))
		}
		if err := w.Flush(); err != nil {
			return lost(err)
		}
	} else if err := s.tp.printfLine("%s", mail); err != nil {
		return lost(err)
	}
	code, msg, err := s.reply()
	if err != nil {
		return lost(err)
	}
	if code/100 == 4 && first {
		return nil, false, &errNext{"4.4.2 MAIL: " + s.said(code, msg)}
	}
	if code/100 != 2 {
		s.set(idx, status(code), "MAIL: "+s.said(code, msg))
		return nil, true, nil
	}
	var accepted, tooMuch []int
	for n, i := range idx {
		if !pipelining {
			err = s.tp.printfLine("RCPT TO:<%s>", addr.ForSMTP(s.rcpts[i]))
		}
		if err == nil {
			code, msg, err = s.reply()
		}
		if err != nil {
			s.set(idx[n:], outcome.Temp, fmt.Sprintf("4.4.2 connection to %s (%s) lost during RCPT: %v", s.host, s.addr, err))
			s.set(accepted, outcome.Temp, fmt.Sprintf("4.4.2 connection to %s (%s) lost during RCPT: %v", s.host, s.addr, err))
			return nil, false, nil
		}
		if code/100 == 2 {
			accepted = append(accepted, i)
			continue
		}
		st, text := status(code), s.said(code, msg)
		if tooMany(code, msg) {
			tooMuch = append(tooMuch, i)
			if st != outcome.Temp {
				// RFC 821's 552: temporary (RFC 5321 4.5.3.1.10).
				st, text = outcome.Temp, "4.5.3 "+text
			}
		}
		s.res[i] = result(s.rcpts[i], st, text, s.host)
	}
	if len(accepted) == 0 {
		return nil, true, nil
	}
	code, msg, err = s.cmd("DATA")
	if err != nil {
		s.set(accepted, outcome.Temp, fmt.Sprintf("4.4.2 connection to %s (%s) lost at DATA: %v", s.host, s.addr, err))
		return nil, false, nil
	}
	if code != 354 {
		s.set(accepted, status(code), "DATA: "+s.said(code, msg))
		if code/100 == 2 {
			s.set(accepted, outcome.Temp, "4.5.0 DATA: "+s.said(code, msg))
		}
		return nil, true, nil
	}
	if err := s.send(m); err != nil {
		s.set(accepted, outcome.Temp, fmt.Sprintf("4.4.2 sending the message to %s (%s) failed: %v", s.host, s.addr, err))
		return nil, false, nil
	}
	code, msg, err = s.reply()
	if err != nil {
		s.set(accepted, outcome.Temp, fmt.Sprintf("4.4.2 connection to %s (%s) lost after the message was sent (it may arrive twice): %v", s.host, s.addr, err))
		return nil, false, nil
	}
	if code/100 == 2 {
		// The peer has the message; a crash from here until the queue
		// records the result sends it again: SMTP's at-least-once window.
		crash().At("remote-accepted")
	}
	s.set(accepted, status(code), s.said(code, msg))
	if code/100 == 4 {
		// The message itself was deferred (421 included): the rest
		// would most likely be too, for one more copy sent each.
		return nil, true, nil
	}
	return tooMuch, true, nil
}

// send streams the message: the DKIM signature fields measure made,
// then the message with masquerade, CRLF, dot-stuffing.
func (s *session) send(msg *message) error {
	f, err := msg.open()
	if err != nil {
		return err
	}
	defer f.Close()
	ww := newWireWriter(s.tp.w, true)
	if _, err := ww.Write(msg.sig); err != nil {
		return err
	}
	if _, err := s.c.Masquerade.Copy(ww, f); err != nil {
		return err
	}
	if err := ww.Finish(); err != nil {
		return err
	}
	return s.tp.w.Flush()
}
