package dkim

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"io"

	msgauth "github.com/emersion/go-msgauth/dkim"
)

// MaxHeader bounds the header held in memory while looking for the
// From field and handing the header to the signatures (go-msgauth holds
// it whole too). Real headers are a few KiB; omail-smtpd refuses more
// than 100 Received lines.
const MaxHeader = 1 << 20

// Error is why a message cannot be signed, with its enhanced status
// code first. Perm is false for what the administrator can fix (a key
// that cannot be read): the message waits for it and is never sent
// unsigned.
type Error struct {
	Perm bool
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// Signer computes the DKIM-Signature fields for one message. Write the
// message to it exactly as it will be sent, then call Finish. It holds
// the header until the empty line that ends it, then learns the author's
// domain and, if that has keys, streams the rest through the signatures
// without keeping it.
type Signer struct {
	keys     *Keys
	readKey  func(path string) (crypto.Signer, error)
	head     []byte // the header so far, until its end is seen
	started  bool   // the header's end was seen: decided
	sigs     []*msgauth.Signer
	w        io.Writer // the signatures, once started
	err      error
	finished bool
}

// NewSigner starts signing one message. With no keys it signs nothing
// and costs nothing.
func (k *Keys) NewSigner() *Signer {
	return &Signer{keys: k, readKey: ReadKey}
}

// Write takes the next bytes of the message as sent: CRLF line ends,
// before dot-stuffing. It fails (with an *Error) as soon as the message
// is known not to be signable, so that the caller stops reading it.
func (s *Signer) Write(b []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if s.keys.Empty() {
		return len(b), nil
	}
	if s.started {
		if err := s.feed(b); err != nil {
			return 0, err
		}
		return len(b), nil
	}
	from := max(0, len(s.head)-3) // the end may straddle two writes
	s.head = append(s.head, b...)
	end := -1
	if bytes.HasPrefix(s.head, []byte("\r\n")) {
		end = 0 // no header at all
	} else if i := bytes.Index(s.head[from:], []byte("\r\n\r\n")); i >= 0 {
		end = from + i + 2
	}
	if end > MaxHeader || end < 0 && len(s.head) > MaxHeader {
		if err := s.tooLarge(); err != nil {
			return 0, s.fail(err)
		}
		return len(b), nil
	}
	if end < 0 {
		return len(b), nil
	}
	if err := s.start(fields(s.head[:end], false)); err != nil {
		return 0, s.fail(err)
	}
	head := s.head
	s.head = nil
	if err := s.feed(head); err != nil {
		return 0, err
	}
	return len(b), nil
}

// feed hands message bytes to the signatures, if there are any.
func (s *Signer) feed(b []byte) error {
	if s.w == nil {
		return nil
	}
	if _, err := s.w.Write(b); err != nil {
		var de *Error
		if !errors.As(err, &de) {
			de = &Error{Msg: "4.3.0 DKIM signing failed: " + err.Error()}
		}
		return s.fail(de)
	}
	return nil
}

func (s *Signer) fail(err error) error {
	s.err = err
	for _, sig := range s.sigs {
		sig.Close()
	}
	s.sigs, s.w = nil, nil
	return err
}

// tooLarge decides a header that outgrew MaxHeader: if its complete
// fields so far show an author with no key, the message is simply not
// signed; otherwise it cannot be signed, and it never will be.
func (s *Signer) tooLarge() error {
	if d, ok := fromDomain(fields(s.head[:MaxHeader], true)); ok && len(s.keys.For(d)) == 0 {
		s.started, s.head = true, nil
		return nil
	}
	return &Error{Perm: true, Msg: fmt.Sprintf("5.3.4 the header is over %d bytes, too large to sign with DKIM", MaxHeader)}
}

// start decides, from the complete header, which keys sign the message
// and starts a signature for each. Reading a key that fails is an
// *Error: the message must wait rather than go out unsigned.
func (s *Signer) start(fs []field) error {
	s.started = true
	domain, ok := fromDomain(fs)
	if !ok || domain == "" {
		return nil
	}
	keys := s.keys.For(domain)
	if len(keys) == 0 {
		return nil
	}
	hk := headerKeys(fs)
	var ws []io.Writer
	for _, k := range keys {
		priv, err := s.readKey(k.Path)
		if err != nil {
			return &Error{Msg: fmt.Sprintf("4.3.0 DKIM key for %s (selector %s) unusable: %v", k.Domain, k.Selector, err)}
		}
		sig, err := msgauth.NewSigner(&msgauth.SignOptions{
			Domain:                 k.Domain,
			Selector:               k.Selector,
			Signer:                 priv,
			Hash:                   crypto.SHA256,
			HeaderCanonicalization: msgauth.CanonicalizationRelaxed,
			BodyCanonicalization:   msgauth.CanonicalizationRelaxed,
			HeaderKeys:             hk,
		})
		if err != nil {
			return &Error{Msg: fmt.Sprintf("4.3.0 DKIM key for %s (selector %s): %v", k.Domain, k.Selector, err)}
		}
		s.sigs = append(s.sigs, sig)
		ws = append(ws, sig)
	}
	s.w = &blankLimit{w: io.MultiWriter(ws...)}
	return nil
}

// MaxBlank bounds the line-end bytes in a row (empty or blank lines)
// a signed message may have. go-msgauth's relaxed body canonicalisation
// holds such a run in memory until it sees whether the body ends there
// (trailing empty lines are not hashed), so a hostile message of
// nothing but empty lines would otherwise be held whole.
const MaxBlank = 1 << 20

// blankLimit refuses a run of more than MaxBlank line-end bytes (with
// only spaces and tabs among them) on its way to the signatures.
type blankLimit struct {
	w   io.Writer
	run int
}

func (l *blankLimit) Write(b []byte) (int, error) {
	for _, c := range b {
		switch c {
		case '\r', '\n':
			if l.run++; l.run > MaxBlank {
				return 0, &Error{Perm: true, Msg: fmt.Sprintf("5.3.4 over %d empty lines in a row: too many to sign with DKIM", MaxBlank/2)}
			}
		case ' ', '\t':
		default:
			l.run = 0
		}
	}
	return l.w.Write(b)
}

// Abort ends an unfinished signing (the message could not be read):
// it stops the signatures' goroutines. After Finish it does nothing, so
// a caller may defer it.
func (s *Signer) Abort() {
	if !s.finished {
		s.finished = true
		s.fail(&Error{Msg: "4.3.0 DKIM signing aborted"})
	}
}

// Finish ends the message and returns the DKIM-Signature fields to put
// in front of it, CRLF-terminated, one per key; nil when the message is
// not signed. Call it once, after the whole message was written.
func (s *Signer) Finish() ([]byte, error) {
	if s.finished {
		return nil, fmt.Errorf("dkim: Finish called twice")
	}
	s.finished = true
	if s.err != nil {
		return nil, s.err
	}
	if s.keys.Empty() {
		return nil, nil
	}
	if !s.started {
		// A message that is all header, no empty line: the header
		// ends with the message. go-msgauth wants the empty line; an
		// empty body hashes the same with or without it (relaxed).
		head := s.head
		s.head = nil
		if err := s.start(fields(head, false)); err != nil {
			return nil, s.fail(err)
		}
		if err := s.feed(append(head, '\r', '\n')); err != nil {
			return nil, err
		}
	}
	var out []byte
	for _, sig := range s.sigs {
		if err := sig.Close(); err != nil {
			return nil, s.fail(&Error{Msg: "4.3.0 DKIM signing failed: " + err.Error()})
		}
		out = append(out, sig.Signature()...)
	}
	s.sigs, s.w = nil, nil
	return out, nil
}
