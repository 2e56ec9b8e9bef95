// Package envelope reads and writes the envelope half of qmail-queue's
// protocol: "F" sender NUL, then "T" recipient NUL for each recipient,
// then one more NUL.
package envelope

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// Limits that keep a hostile envelope from exhausting memory. RFC 5321
// allows 256 octets in a path; we allow more, for the odd legacy setup,
// but not without bound.
const (
	MaxAddress    = 1024
	MaxRecipients = 100000
)

// Envelope is a message's sender and recipients.
type Envelope struct {
	Sender string
	Rcpts  []string
}

// ErrFormat is an envelope that is not in the protocol's format (exit 91).
var ErrFormat = errors.New("envelope format error")

// ErrRead is an envelope that could not be read whole (exit 54).
var ErrRead = errors.New("cannot read envelope")

// ErrTooLong is an address over MaxAddress (qmail-queue's exit 11); it
// is also an ErrFormat.
var ErrTooLong = errors.New("address too long")

// FormatError says what is wrong with an envelope.
type FormatError struct{ Why string }

func (e *FormatError) Error() string { return "envelope format error: " + e.Why }
func (e *FormatError) Is(t error) bool {
	return t == ErrFormat || (t == ErrTooLong && e.Why == tooLong)
}

const tooLong = "address too long"

// ReadError wraps an I/O error or a premature end of the envelope.
type ReadError struct{ Err error }

func (e *ReadError) Error() string   { return "cannot read envelope: " + e.Err.Error() }
func (e *ReadError) Unwrap() error   { return e.Err }
func (e *ReadError) Is(t error) bool { return t == ErrRead }

// Read parses a whole envelope and checks that nothing follows it. It
// never returns a partial envelope: an envelope cut short is a ReadError,
// a malformed one a FormatError.
func Read(r io.Reader) (*Envelope, error) {
	br := bufio.NewReaderSize(r, 4096)
	field := func() (string, error) {
		var buf []byte
		for {
			b, err := br.ReadByte()
			if err == io.EOF {
				return "", &ReadError{io.ErrUnexpectedEOF}
			}
			if err != nil {
				return "", &ReadError{err}
			}
			if b == 0 {
				return string(buf), nil
			}
			if len(buf) > MaxAddress {
				return "", &FormatError{tooLong}
			}
			buf = append(buf, b)
		}
	}
	f, err := field()
	if err != nil {
		return nil, err
	}
	if len(f) == 0 || f[0] != 'F' {
		return nil, &FormatError{"does not start with F"}
	}
	env := &Envelope{Sender: f[1:]}
	if err := CheckAddress(env.Sender); err != nil {
		return nil, err
	}
	for {
		t, err := field()
		if err != nil {
			return nil, err
		}
		if t == "" {
			break
		}
		if t[0] != 'T' {
			return nil, &FormatError{fmt.Sprintf("field starting with %q where T was expected", t[0])}
		}
		if len(env.Rcpts) >= MaxRecipients {
			return nil, &FormatError{"too many recipients"}
		}
		rcpt := t[1:]
		if rcpt == "" {
			return nil, &FormatError{"empty recipient"}
		}
		if err := CheckAddress(rcpt); err != nil {
			return nil, err
		}
		env.Rcpts = append(env.Rcpts, rcpt)
	}
	if len(env.Rcpts) == 0 {
		return nil, &FormatError{"no recipients"}
	}
	// Anything after the terminating NUL means the writer and we disagree
	// about the protocol: refuse rather than guess.
	if _, err := br.ReadByte(); err == nil {
		return nil, &FormatError{"data after the end of the envelope"}
	} else if err != io.EOF {
		return nil, &ReadError{err}
	}
	return env, nil
}

// CheckAddress refuses addresses that could break the lines they are
// later written into (Return-Path:, Delivered-To:, the queue files):
// control characters, and over-long ones.
func CheckAddress(a string) error {
	if len(a) > MaxAddress {
		return &FormatError{tooLong}
	}
	for i := 0; i < len(a); i++ {
		if a[i] < 0x20 || a[i] == 0x7f {
			return &FormatError{fmt.Sprintf("control character 0x%02x in address", a[i])}
		}
	}
	return nil
}

// Write sends an envelope in the protocol's format.
func Write(w io.Writer, env *Envelope) error {
	bw := bufio.NewWriter(w)
	bw.WriteString("F")
	bw.WriteString(env.Sender)
	bw.WriteByte(0)
	for _, r := range env.Rcpts {
		bw.WriteString("T")
		bw.WriteString(r)
		bw.WriteByte(0)
	}
	bw.WriteByte(0)
	return bw.Flush()
}
