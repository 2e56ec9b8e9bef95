// Package outcome is what one delivery attempt says about one recipient:
// delivered, try again later, or give up and bounce, with a one-line
// account for the log, the queue listing and bounces. Every transport
// (lib/local, lib/remote, lib/outbox) reports in it and the queue manager
// (lib/qmanager) records it; the queue's stored letters (queue.Status) are
// a different thing, derived from it in one place, qmanager's record.
//
// The zero Result is a temporary failure: a transport that returns without
// filling one in defers the recipient, it never marks it delivered.
package outcome

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Status is the verdict on one recipient.
type Status int

const (
	Temp Status = iota // try again later; the zero value, on purpose
	OK                 // delivered, or forwarded: never try again
	Perm               // give up and bounce
)

func (s Status) String() string {
	switch s {
	case Temp:
		return "temp"
	case OK:
		return "ok"
	case Perm:
		return "perm"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// Result is the outcome for one recipient.
type Result struct {
	Status Status
	// Text is one line, e.g. "delivered: mbox /var/mail/bob",
	// "5.1.1 no such user: bob", "127.0.0.1 said: 250 ok".
	Text string
	// Forward holds the addresses the message must be re-queued to (local
	// deliveries: aliases, &addr and bare addresses in .omail files).
	// They count only when Status is OK.
	Forward []string
	// Prefix holds the header lines to put in front of the copy queued to
	// Forward: the Delivered-To line, which is what stops forwarding
	// loops (the next delivery finds it and bounces).
	Prefix []string
}

// MaxText is how much of a text Line keeps, "..." included.
const MaxText = 900

// Line makes s one line of valid UTF-8 of at most MaxText bytes:
// control characters, newlines included, become spaces. Texts end up in
// NUL-separated state files, one-line logs and bounce reports.
func Line(s string) string { return Cut(s, MaxText) }

// Cut is Line with a limit of limit bytes: a longer text is cut at a
// character boundary and ends in "...", within the limit. Cutting again
// changes nothing.
func Cut(s string, limit int) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > limit {
		n := max(0, limit-len("..."))
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n] + "..."
	}
	return s
}

// Tempf is a temporary failure with a formatted text.
func Tempf(format string, a ...any) Result {
	return Result{Status: Temp, Text: Line(fmt.Sprintf(format, a...))}
}

// Permf is a permanent failure with a formatted text.
func Permf(format string, a ...any) Result {
	return Result{Status: Perm, Text: Line(fmt.Sprintf(format, a...))}
}
