// Package qexit holds the exit codes that are the contract between
// omail's programs: qmail-queue's codes (omail-queue and every program
// that hands it a message), the 0/100/111 of every other command, and
// the mapping of Go errors onto them.
package qexit

import (
	"errors"
	"fmt"
	"syscall"
)

// qmail-queue's exit codes (qmail-queue(8)). 11 to 40 are permanent;
// everything else but 0 is temporary.
const (
	OK              = 0
	AddressTooLong  = 11
	Refused         = 31 // the queue permanently refuses the message
	NoMemory        = 51
	Timeout         = 52
	WriteError      = 53 // includes disk full
	ReadError       = 54 // cannot read the message or the envelope
	ConfigError     = 55
	HomeError       = 61
	QueueError      = 62
	Bug             = 81
	EnvelopeFormat  = 91
	TempRefused     = 71
	PermanentLowest = 11
	PermanentHigh   = 40
)

// The exit codes of every omail command but omail-queue, qmail's
// convention for delivery programs: 0 done, 100 permanent failure
// (do not try again), 111 temporary failure (try again later). A usage
// error is permanent, except where a caller must retry (omail-unpack's
// hooks use Temp for it, so that OCMP keeps the file).
const (
	Perm  = 100
	Temp  = 111
	Usage = Perm
)

// Permanent reports whether an exit code means "do not try again".
func Permanent(code int) bool { return code >= PermanentLowest && code <= PermanentHigh }

// Error is a failure with the exit code that reports it.
type Error struct {
	Code int
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// New wraps err with an exit code; a nil err stays nil.
func New(code int, err error) error {
	if err == nil {
		return nil
	}
	return &Error{code, err}
}

// Newf makes an Error from a message.
func Newf(code int, format string, args ...any) error {
	return &Error{code, fmt.Errorf(format, args...)}
}

// Code finds the exit code for err: the code of a wrapped *Error, or
// WriteError for errors a full or failing disk gives, or def.
func Code(err error, def int) int {
	if err == nil {
		return OK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.EIO) || errors.Is(err, syscall.EFBIG) {
		return WriteError
	}
	if errors.Is(err, syscall.ENOMEM) {
		return NoMemory
	}
	return def
}

// Describe is the one-line reason qmail-queue's callers print for a code.
func Describe(code int) string {
	switch code {
	case OK:
		return "ok"
	case AddressTooLong:
		return "address too long"
	case Refused:
		return "mail server permanently refuses the message"
	case NoMemory:
		return "out of memory"
	case Timeout:
		return "timeout"
	case WriteError:
		return "write error or disk full"
	case ReadError:
		return "unable to read the message or envelope"
	case ConfigError:
		return "unable to read a configuration file"
	case HomeError:
		return "trouble with the omail home directory"
	case QueueError:
		return "trouble with the queue directory"
	case TempRefused:
		return "mail server temporarily refuses the message"
	case Bug:
		return "internal bug"
	case EnvelopeFormat:
		return "envelope format error"
	}
	if Permanent(code) {
		return fmt.Sprintf("permanent failure (exit %d)", code)
	}
	return fmt.Sprintf("temporary failure (exit %d)", code)
}
