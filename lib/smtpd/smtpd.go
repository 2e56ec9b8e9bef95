// Package smtpd is omail-smtpd's SMTP session: one connection, read as
// raw bytes so that every line is checked before it means anything,
// replies with enhanced status codes, relaying decided by package relay,
// and each message streamed into the queue, accepted only once the queue
// program has said it is on disk.
package smtpd

import (
	"bufio"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"omail/lib/clock"
	"omail/lib/envelope"
	"omail/lib/eventlog"
	"omail/lib/qexit"
	"omail/lib/relay"
)

// Sink takes one message into the queue (qqclient.Client is one).
type Sink interface {
	io.Writer
	// Commit ends the message and returns the queue program's exit
	// code: 0 only when the message is durably queued.
	Commit(*envelope.Envelope) (int, error)
	// Abort ends the message so that nothing is queued.
	Abort()
}

// AuthResult is a password check's answer.
type AuthResult int

// The answers of a password check.
const (
	AuthOK   AuthResult = iota
	AuthFail            // wrong user or password
	AuthTemp            // could not check now
)

// Config is everything a session needs to know, read by the caller
// from control files and the environment.
type Config struct {
	Hostname  string // control/me: replies and the Received line
	Greeting  string // control/smtpgreeting: the 220 line
	DataBytes int64  // largest message, 0 for no limit
	MaxRcpt   int    // recipients per message, 0 for no limit
	Timeout   time.Duration
	TLS       *tls.Config // nil: no STARTTLS
	// ImplicitTLS: the connection starts with a TLS handshake (SMTPS,
	// port 465, RFC 8314), with TLS; the session is then as after
	// STARTTLS: AUTH at once, no STARTTLS offered.
	ImplicitTLS  bool
	AuthRequired bool // MAIL only after AUTH (submission)
	// Auth checks a user name and password; nil means no AUTH.
	Auth func(user, pass string) AuthResult
	// RelayClient is $RELAYCLIENT when set: relaying is allowed and the
	// value is appended to every recipient.
	RelayClient *string
	RemoteIP    string // $TCPREMOTEIP
	RemoteHost  string // $TCPREMOTEHOST, only as tcprules (or the listener) set it
	Rules       *relay.Rules
	// Queue starts a message on its way into the queue. In omail-smtpd
	// it is set by smtpdcmd (config.go, controlConfig.session) to
	// qqclient.Open, which runs omail-queue, or omail-queue's own code
	// (queue.Submission) in this process when omail-queue is not set-id.
	Queue func() (Sink, error)
	Log   io.Writer
	Now   func() time.Time
	NewID func() string
}

// Limits on a misbehaving client.
const (
	maxErrors    = 10 // unknown or malformed commands before we hang up
	maxAuthFails = 3
	maxReceived  = 100 // Received: lines before we call it a loop
)

type session struct {
	cfg  *Config
	conn net.Conn
	br   *bufio.Reader
	w    *bufio.Writer
	line []byte

	tls       bool
	helo      string
	esmtp     bool
	authUser  string
	authFails int
	errors    int
	clientOK  string // why the client may relay, "" if it may not
	closed    bool

	// the transaction
	mail     *relay.Addr
	senderOK bool
	rcpts    []string
	utf8     bool // MAIL gave SMTPUTF8 (RFC 6531)
}

// Serve runs one SMTP session on conn and closes it.
func Serve(conn net.Conn, cfg *Config) {
	s := &session{cfg: cfg, conn: conn}
	s.setConn(conn)
	if cfg.RelayClient != nil {
		s.clientOK = "RELAYCLIENT"
	} else if ok, why := cfg.Rules.ClientMayRelay(cfg.RemoteIP, cfg.RemoteHost); ok {
		s.clientOK = why
	}
	if cfg.RemoteHost != "" {
		s.log("connect host=%s relay=%s", clean(cfg.RemoteHost), orNo(s.clientOK))
	} else {
		s.log("connect relay=%s", orNo(s.clientOK))
	}
	if cfg.ImplicitTLS && !s.handshake() {
		s.conn.Close()
		return
	}
	s.reply(220, "", cfg.Greeting+" ESMTP")
	for !s.closed {
		// AUTH with an initial response may be as long as an AUTH
		// continuation line (RFC 4954); every other command is held to
		// maxCommand.
		line, long, err := s.readLine(maxAuthLine)
		if err != nil {
			s.readFailed(err)
			break
		}
		if _, auth := cutPrefixFold(string(line[:min(len(line), 5)]), "AUTH "); long || (len(line) > maxCommand && !auth) {
			s.protocolError(500, "5.5.2", "line too long")
			continue
		}
		s.command(string(line))
	}
	s.flush()
	// Through TLS when it is on, so that the client gets close_notify.
	s.conn.Close()
}

func (s *session) setConn(c net.Conn) {
	s.conn = c
	s.br = bufio.NewReaderSize(c, 4096)
	s.w = bufio.NewWriterSize(c, 4096)
}

func orNo(s string) string {
	if s == "" {
		return "no"
	}
	return strconv.Quote(s)
}

func (s *session) log(format string, a ...any) {
	if s.cfg.Log == nil {
		return
	}
	ip := clean(s.cfg.RemoteIP)
	if ip == "" {
		ip = "unknown"
	}
	fmt.Fprintf(s.cfg.Log, "omail-smtpd: %s %s\n", ip, fmt.Sprintf(format, a...))
}

// reply writes a reply; multi-line text is sent as continuation lines.
// The enhanced status code goes on every line, as RFC 2034 asks.
func (s *session) reply(code int, ext string, text string) {
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		sep := " "
		if i < len(lines)-1 {
			sep = "-"
		}
		if ext != "" {
			fmt.Fprintf(s.w, "%d%s%s %s\r\n", code, sep, ext, l)
		} else {
			fmt.Fprintf(s.w, "%d%s%s\r\n", code, sep, l)
		}
	}
}

// hangup sends a last reply and ends the session.
func (s *session) hangup(code int, ext, text string) {
	s.reply(code, ext, text)
	s.closed = true
}

// protocolError counts a client mistake; too many and we hang up.
func (s *session) protocolError(code int, ext, text string) {
	s.errors++
	if s.errors >= maxErrors {
		s.log("too many errors")
		s.hangup(421, "4.7.0", s.cfg.Hostname+" too many errors, closing connection")
		return
	}
	s.reply(code, ext, text)
}

func (s *session) readFailed(err error) {
	var ne net.Error
	switch {
	case errors.Is(err, errBareLF), errors.Is(err, errBareCR), errors.Is(err, errNUL):
		s.log("refused: %v (smuggling defence), closing", err)
		s.hangup(554, "5.6.0", fmt.Sprintf("%v: lines must end in CRLF, and no NUL; closing connection", err))
	case errors.As(err, &ne) && ne.Timeout():
		s.log("timeout, closing")
		s.hangup(421, "4.4.2", s.cfg.Hostname+" timeout, closing connection")
	case err == io.EOF, errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		s.log("client hung up")
		s.closed = true
	default:
		s.log("read error: %v", err)
		s.closed = true
	}
}

func (s *session) resetTransaction() {
	s.mail = nil
	s.senderOK = false
	s.rcpts = nil
	s.utf8 = false
}

// httpVerbs are the requests of browsers and proxies: such a client is
// not speaking SMTP, and talking on could help a cross-protocol attack.
var httpVerbs = map[string]bool{"GET": true, "POST": true, "HEAD": true, "PUT": true,
	"DELETE": true, "OPTIONS": true, "CONNECT": true, "TRACE": true, "PATCH": true}

func (s *session) command(line string) {
	verb, arg, _ := strings.Cut(line, " ")
	verb = strings.ToUpper(verb)
	switch verb {
	case "HELO", "EHLO":
		s.hello(verb == "EHLO", strings.TrimSpace(arg))
	case "MAIL":
		s.mailFrom(arg)
	case "RCPT":
		s.rcptTo(arg)
	case "DATA":
		s.data(arg)
	case "RSET":
		s.resetTransaction()
		s.reply(250, "2.0.0", "flushed")
	case "NOOP":
		s.reply(250, "2.0.0", "ok")
	case "QUIT":
		s.hangup(221, "2.0.0", s.cfg.Hostname+" closing connection")
	case "VRFY", "EXPN":
		// RFC 5321 3.5.3: a server that will not verify or expand
		// answers 252 (7.3: EXPN is best disabled); both need an
		// argument (4.1.1.6, 4.1.1.7).
		if strings.TrimSpace(arg) == "" {
			s.protocolError(501, "5.5.4", verb+" needs an argument")
			return
		}
		s.reply(252, "2.5.2", "send some mail, I will try my best")
	case "TURN", "ETRN", "ATRN":
		// Known, not offered here (RFC 5321 4.2.4: 502, not 500).
		s.protocolError(502, "5.5.1", verb+" not offered")
	case "HELP":
		s.reply(214, "2.0.0", "omail-smtpd: see RFC 5321")
	case "STARTTLS":
		s.startTLS(arg)
	case "AUTH":
		s.auth(arg)
	default:
		if httpVerbs[verb] {
			s.log("refused: HTTP request %q, closing", clean(verb))
			s.hangup(554, "5.5.1", "this is an SMTP server, not HTTP; closing connection")
			return
		}
		// RFC 5321 4.2.4: 500 for a command we do not recognise; 502
		// is for one we know but do not offer here (STARTTLS, AUTH).
		s.protocolError(500, "5.5.1", "command not recognized")
	}
}

func (s *session) hello(esmtp bool, name string) {
	s.resetTransaction()
	s.helo, s.esmtp = clean(name), esmtp
	if !esmtp {
		s.reply(250, "", s.cfg.Hostname)
		return
	}
	caps := []string{s.cfg.Hostname, "PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8"}
	if s.cfg.DataBytes > 0 {
		caps = append(caps, "SIZE "+strconv.FormatInt(s.cfg.DataBytes, 10))
	} else {
		caps = append(caps, "SIZE")
	}
	if s.cfg.TLS != nil && !s.tls {
		caps = append(caps, "STARTTLS")
	}
	if s.cfg.Auth != nil && s.tls {
		caps = append(caps, "AUTH PLAIN LOGIN")
	}
	s.reply(250, "", strings.Join(caps, "\n"))
}

// cutPrefixFold removes a case-insensitive prefix.
func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return s, false
	}
	return s[len(prefix):], true
}

// params splits ESMTP parameters KEY=VALUE into upper-cased keys.
func params(s string) map[string]string {
	m := map[string]string{}
	for _, f := range strings.Fields(s) {
		k, v, _ := strings.Cut(f, "=")
		m[strings.ToUpper(k)] = v
	}
	return m
}

func (s *session) mailFrom(arg string) {
	if s.cfg.AuthRequired && s.authUser == "" {
		s.reply(530, "5.7.0", "authentication required")
		return
	}
	if s.mail != nil {
		s.protocolError(503, "5.5.1", "nested MAIL command")
		return
	}
	rest, ok := cutPrefixFold(arg, "FROM:")
	if !ok {
		s.protocolError(501, "5.5.4", "syntax: MAIL FROM:<address>")
		return
	}
	path, ps, err := relay.SplitPath(rest)
	var a relay.Addr
	if err == nil {
		a, err = relay.Parse(path)
	}
	if err != nil {
		s.protocolError(501, "5.1.7", "bad sender address syntax")
		return
	}
	utf8 := false
	for k, v := range params(ps) {
		switch k {
		case "SMTPUTF8":
			// RFC 6531 3.4: no value. It allows UTF-8 in the addresses
			// of this transaction and in the message's header (RFC 6532).
			if v != "" {
				s.protocolError(501, "5.5.4", "SMTPUTF8 takes no value")
				return
			}
			utf8 = true
		case "SIZE":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				s.protocolError(501, "5.5.4", "bad SIZE parameter")
				return
			}
			if s.cfg.DataBytes > 0 && n > s.cfg.DataBytes {
				s.log("refused: SIZE=%d over databytes %d", n, s.cfg.DataBytes)
				s.reply(552, "5.3.4", "message too big")
				return
			}
		case "BODY":
			if u := strings.ToUpper(v); u != "7BIT" && u != "8BITMIME" {
				s.reply(555, "5.5.4", "unsupported BODY parameter")
				return
			}
		case "AUTH":
			// RFC 4954's original submitter: informational only.
		default:
			s.reply(555, "5.5.4", "unsupported MAIL parameter "+clean(k))
			return
		}
	}
	if a.UTF8() && !utf8 {
		s.reply(553, "5.6.7", "a UTF-8 sender address needs MAIL FROM:<...> SMTPUTF8")
		return
	}
	ok, err = s.cfg.Rules.SenderMayRelay(a)
	if err != nil {
		s.log("relaymailfrom.cdb: %v", err)
		s.reply(451, "4.3.0", "temporary trouble reading relaymailfrom.cdb")
		return
	}
	s.mail, s.senderOK, s.rcpts, s.utf8 = &a, ok, nil, utf8
	s.reply(250, "2.1.0", "sender ok")
}

func (s *session) rcptTo(arg string) {
	if s.mail == nil {
		s.protocolError(503, "5.5.1", "MAIL first")
		return
	}
	rest, ok := cutPrefixFold(arg, "TO:")
	if !ok {
		s.protocolError(501, "5.5.4", "syntax: RCPT TO:<address>")
		return
	}
	path, ps, err := relay.SplitPath(rest)
	var a relay.Addr
	if err == nil {
		a, err = relay.Parse(path)
	}
	if err != nil || a.Null() {
		s.protocolError(501, "5.1.3", "bad recipient address syntax")
		return
	}
	if ps != "" {
		s.reply(555, "5.5.4", "unsupported RCPT parameter")
		return
	}
	if a.UTF8() && !s.utf8 {
		// RFC 6531 3.5: refused, never downgraded.
		s.reply(553, "5.6.7", "a UTF-8 recipient address needs MAIL FROM:<...> SMTPUTF8")
		return
	}
	// maxrcpt 0 means no limit of ours, but never more than the queue
	// takes in one envelope.
	limit := s.cfg.MaxRcpt
	if limit <= 0 || limit > envelope.MaxRecipients {
		limit = envelope.MaxRecipients
	}
	if len(s.rcpts) >= limit {
		s.log("refused: more than %d recipients", limit)
		s.reply(452, "4.5.3", "too many recipients")
		return
	}
	why := s.relayReason()
	if a.Domain == "" && strings.EqualFold(a.Local, "postmaster") {
		// RFC 5321 4.5.1: <postmaster> without a domain must work; it
		// is this host's.
		a.Domain = strings.ToLower(s.cfg.Hostname)
		why = "postmaster"
	}
	if why != "" {
		switch {
		case a.Domain == "":
			s.reply(553, "5.1.3", "a domain is required")
			return
		case relay.BareIP(a.Domain):
			s.reply(553, "5.1.3", "an IP address as domain must be in brackets")
			return
		}
	} else {
		if t := a.Trick(); t != "" {
			s.log("refused rcpt %q: %s", clean(path), t)
			s.reply(553, "5.7.1", "relaying denied: "+t)
			return
		}
		ours, err := s.cfg.Rules.Accepts(a.Domain)
		if err != nil {
			s.log("morercpthosts.cdb: %v", err)
			s.reply(451, "4.3.0", "temporary trouble reading morercpthosts.cdb")
			return
		}
		if !ours {
			s.log("refused rcpt %q: relaying denied", clean(path))
			s.reply(553, "5.7.1", "relaying denied: this host does not take mail for that domain")
			return
		}
	}
	r := a.String()
	if s.cfg.RelayClient != nil {
		r += *s.cfg.RelayClient
	}
	if err := envelope.CheckAddress(r); err != nil {
		s.protocolError(501, "5.1.3", "bad recipient address")
		return
	}
	s.rcpts = append(s.rcpts, r)
	s.reply(250, "2.1.5", "recipient ok")
}

// relayReason says why this transaction may relay, or "".
func (s *session) relayReason() string {
	switch {
	case s.clientOK != "":
		return s.clientOK
	case s.authUser != "":
		return "AUTH"
	case s.senderOK:
		return "relaymailfrom"
	}
	return ""
}

// protocol is the Received: line's "with": RFC 3848's names, and RFC
// 6531's UTF8SMTP family for a transaction that gave SMTPUTF8.
func (s *session) protocol() string {
	p := "SMTP"
	switch {
	case s.utf8:
		p = "UTF8SMTP"
	case s.esmtp:
		p = "ESMTP"
	}
	if s.tls {
		p += "S"
	}
	if s.authUser != "" {
		p += "A"
	}
	return p
}

func (s *session) receivedLine(id string) string {
	helo := s.helo
	if helo == "" {
		helo = "unknown"
	}
	from := helo
	if ip := clean(s.cfg.RemoteIP); ip != "" {
		if strings.Contains(ip, ":") {
			ip = "IPv6:" + ip
		}
		info := "[" + ip + "]"
		if h := clean(s.cfg.RemoteHost); h != "" {
			info = h + " " + info
		}
		from += " (" + info + ")"
	}
	return fmt.Sprintf("Received: from %s\n\tby %s with %s id %s;\n\t%s\n",
		from, clean(s.cfg.Hostname), s.protocol(), id, clock.Now(s.cfg.Now).Format("Mon, 02 Jan 2006 15:04:05 -0700"))
}

func newID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (s *session) data(arg string) {
	switch {
	case s.mail == nil:
		s.protocolError(503, "5.5.1", "MAIL first")
		return
	case len(s.rcpts) == 0:
		s.protocolError(503, "5.5.1", "RCPT first")
		return
	case arg != "":
		s.protocolError(501, "5.5.4", "DATA takes no argument")
		return
	}
	defer s.resetTransaction()
	sink, err := s.cfg.Queue()
	if err != nil {
		s.log("cannot start the queue program: %v", err)
		s.reply(451, "4.3.0", "temporary queue failure, try again later")
		return
	}
	id := newID()
	if s.cfg.NewID != nil {
		id = s.cfg.NewID()
	}
	s.reply(354, "", "go ahead, end with <CRLF>.<CRLF>")
	bw := bufio.NewWriterSize(sink, 64*1024)
	bw.WriteString(s.receivedLine(id))
	var size int64
	received := 0
	inHeader := true
	tooLong, tooBig := false, false
	for {
		// The limit is on the text: a dot added by dot-stuffing does not
		// count (RFC 5321 4.5.3.1.6), so the wire may carry one more.
		line, long, err := s.readLine(maxText + 1)
		if err != nil {
			sink.Abort()
			s.readFailed(err)
			return
		}
		if len(line) == 1 && line[0] == '.' {
			break
		}
		if len(line) > 0 && line[0] == '.' {
			line = line[1:]
		}
		if long || len(line) > maxText {
			tooLong = true
			continue
		}
		if inHeader {
			if len(line) == 0 {
				inHeader = false
			} else if _, ok := cutPrefixFold(string(line[:min(len(line), 9)]), "received:"); ok {
				received++
			}
		}
		size += int64(len(line)) + 1
		if s.cfg.DataBytes > 0 && size > s.cfg.DataBytes {
			tooBig = true
		}
		if !tooLong && !tooBig && received <= maxReceived {
			bw.Write(line)
			bw.WriteByte('\n')
		}
	}
	switch {
	case tooLong:
		sink.Abort()
		s.log("refused message: line over %d octets", maxText+2)
		s.reply(554, "5.6.0", "line too long: RFC 5321 allows 1000 octets")
		return
	case tooBig:
		sink.Abort()
		s.log("refused message: over databytes %d", s.cfg.DataBytes)
		s.reply(552, "5.3.4", "message too big")
		return
	case received > maxReceived:
		sink.Abort()
		s.log("refused message: %d Received lines, a loop", received)
		s.reply(554, "5.4.6", "too many Received lines: mail loop")
		return
	}
	if err := bw.Flush(); err != nil {
		sink.Abort()
		s.log("writing to the queue: %v", err)
		s.reply(451, "4.3.0", "temporary queue failure, try again later")
		return
	}
	e := &envelope.Envelope{Sender: s.mail.String(), Rcpts: s.rcpts}
	code, err := sink.Commit(e)
	// Each address cleaned by itself: clean cuts what it is given at
	// its limit, and the log line is the record of every recipient.
	cleaned := make([]string, len(s.rcpts))
	for i, r := range s.rcpts {
		cleaned[i] = clean(r)
	}
	rcpts := strings.Join(cleaned, ",")
	switch {
	case code == qexit.OK:
		s.log("accepted id=%s from=<%s> to=<%s> bytes=%d proto=%s relay=%s auth=%s",
			id, clean(e.Sender), rcpts, size, s.protocol(), orNo(s.relayReason()), orNo(clean(s.authUser)))
		s.reply(250, "2.0.0", "ok id="+id)
	case qexit.Permanent(code):
		s.log("queue refused id=%s from=<%s>: %v", id, clean(e.Sender), err)
		s.reply(554, "5.3.0", "queue refused the message: "+qexit.Describe(code))
	default:
		s.log("queue failed id=%s from=<%s>: %v", id, clean(e.Sender), err)
		s.reply(451, "4.3.0", "temporary queue failure ("+qexit.Describe(code)+"), try again later")
	}
}

// clean is eventlog.Clean: peer-supplied text made safe for a log line
// or a header.
func clean(s string) string { return eventlog.Clean(s) }
