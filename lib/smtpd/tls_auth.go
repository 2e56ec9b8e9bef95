package smtpd

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"strings"
	"time"
)

func (s *session) startTLS(arg string) {
	switch {
	case s.cfg.TLS == nil:
		s.protocolError(502, "5.5.1", "STARTTLS not available")
		return
	case s.tls:
		s.protocolError(503, "5.5.1", "TLS already active")
		return
	case strings.TrimSpace(arg) != "":
		s.protocolError(501, "5.5.4", "STARTTLS takes no argument")
		return
	case s.br.Buffered() > 0:
		// Whatever came after STARTTLS in the clear would be taken as
		// said inside TLS (CVE-2011-0411 and its kin): refuse it all.
		s.log("refused: command pipelined after STARTTLS, closing")
		s.hangup(554, "5.5.1", "command pipelined after STARTTLS; closing connection")
		return
	}
	s.reply(220, "2.0.0", "ready to start TLS")
	if err := s.flush(); err != nil {
		s.closed = true
		return
	}
	if !s.handshake() {
		s.closed = true
		return
	}
	// RFC 3207: the client starts over, with a new EHLO.
	s.helo, s.esmtp = "", false
	s.resetTransaction()
}

// handshake puts the session under TLS: after STARTTLS, or first thing
// on an implicit-TLS connection. It logs and returns false on failure.
func (s *session) handshake() bool {
	if s.cfg.TLS == nil {
		s.log("no certificate (servercert.pem) for TLS, closing")
		return false
	}
	tc := tls.Server(s.conn, s.cfg.TLS)
	if s.cfg.Timeout > 0 {
		tc.SetDeadline(time.Now().Add(s.cfg.Timeout))
	}
	if err := tc.Handshake(); err != nil {
		s.log("TLS handshake failed: %v", err)
		return false
	}
	tc.SetDeadline(time.Time{})
	s.setConn(tc)
	s.tls = true
	st := tc.ConnectionState()
	s.log("TLS %s %s", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
	return true
}

func (s *session) auth(arg string) {
	switch {
	case s.cfg.Auth == nil:
		s.protocolError(502, "5.5.1", "AUTH not available")
		return
	case !s.tls:
		// Counted: AUTH is not offered in the clear.
		s.protocolError(538, "5.7.11", "encryption required: STARTTLS first")
		return
	case s.authUser != "":
		s.protocolError(503, "5.5.1", "already authenticated")
		return
	case s.mail != nil:
		s.protocolError(503, "5.5.1", "AUTH not allowed during a mail transaction")
		return
	}
	mech, initial, hasInitial := strings.Cut(strings.TrimSpace(arg), " ")
	var user, pass string
	var ok bool
	switch strings.ToUpper(mech) {
	case "PLAIN":
		resp, got := s.saslResponse(initial, hasInitial, "")
		if !got {
			return
		}
		parts := bytes.Split(resp, []byte{0})
		if len(parts) != 3 || (len(parts[0]) > 0 && !bytes.Equal(parts[0], parts[1])) {
			s.protocolError(501, "5.5.2", "malformed PLAIN response")
			return
		}
		user, pass, ok = string(parts[1]), string(parts[2]), true
	case "LOGIN":
		var u, p []byte
		if u, ok = s.saslResponse(initial, hasInitial, "Username:"); !ok {
			return
		}
		if p, ok = s.saslResponse("", false, "Password:"); !ok {
			return
		}
		user, pass = string(u), string(p)
	default:
		s.protocolError(504, "5.5.4", "unrecognized authentication mechanism")
		return
	}
	if user == "" || strings.ContainsAny(user, "\x00\r\n") || strings.ContainsRune(pass, 0) {
		s.protocolError(501, "5.5.2", "malformed credentials")
		return
	}
	switch s.cfg.Auth(user, pass) {
	case AuthOK:
		s.authUser = user
		s.log("auth ok user=%s", clean(user))
		s.reply(235, "2.7.0", "authentication succeeded")
	case AuthTemp:
		s.log("auth temporary failure user=%s", clean(user))
		s.reply(454, "4.7.0", "temporary authentication failure")
	default:
		s.authFails++
		s.log("auth failed user=%s (%d)", clean(user), s.authFails)
		if s.authFails >= maxAuthFails {
			s.hangup(421, "4.7.0", s.cfg.Hostname+" too many authentication failures, closing connection")
			return
		}
		s.reply(535, "5.7.8", "authentication failed")
	}
}

// saslResponse returns the client's decoded response: the initial
// response given with AUTH, or one read after a 334 challenge. It
// replies and returns false when there is none to be had.
func (s *session) saslResponse(initial string, hasInitial bool, prompt string) ([]byte, bool) {
	if !hasInitial {
		s.reply(334, "", base64.StdEncoding.EncodeToString([]byte(prompt)))
		line, long, err := s.readLine(maxAuthLine)
		if err != nil {
			s.readFailed(err)
			return nil, false
		}
		if long {
			s.protocolError(500, "5.5.2", "line too long")
			return nil, false
		}
		initial = string(line)
	}
	initial = strings.TrimSpace(initial)
	if initial == "*" {
		// A cancel is no mistake, but counted all the same: without
		// that, AUTH PLAIN / * would let a client talk forever.
		s.protocolError(501, "5.0.0", "authentication cancelled")
		return nil, false
	}
	if initial == "=" {
		return []byte{}, true
	}
	b, err := base64.StdEncoding.DecodeString(initial)
	if err != nil {
		s.protocolError(501, "5.5.2", "cannot decode base64")
		return nil, false
	}
	return b, true
}
