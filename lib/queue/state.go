package queue

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"omail/lib/addr"
	"omail/lib/envelope"
)

// Status is a recipient's state in the queue. See docs/INTERNALS.md.
type Status byte

const (
	// Todo: not delivered yet; with Attempts > 0 it is deferred.
	Todo Status = 'T'
	// Done: delivered; never attempted again.
	Done Status = 'D'
	// Failed: failed permanently (or expired), not yet reported in a bounce.
	Failed Status = 'F'
	// Bounced: failed and reported in a bounce that is itself queued.
	Bounced Status = 'B'
)

func (s Status) String() string {
	switch s {
	case Todo:
		return "todo"
	case Done:
		return "done"
	case Failed:
		return "failed"
	case Bounced:
		return "bounced"
	}
	return fmt.Sprintf("status(%q)", byte(s))
}

// Final reports whether nothing more will be done for the recipient but
// reporting it.
func (s Status) Final() bool { return s == Done || s == Bounced }

// Rcpt is one recipient of a queued message and where its delivery stands.
type Rcpt struct {
	Addr      string
	Status    Status
	Attempts  int
	NextTry   int64 // unix seconds; 0 means as soon as possible
	LastError string
}

// State is a queued message's envelope with the state of each recipient.
// It is the content of the files in todo/ and info/.
type State struct {
	ID     string
	Dir    string // where it was read from, DirTodo or DirInfo; not stored
	Queued int64  // unix seconds
	Sender string
	Rcpts  []Rcpt
	// MessageLen is the length of the message in mess/ID, recorded
	// when a deliverer moves the state of a single-file entry to info/
	// (todofile.go); 0 when not recorded (the state is in todo/, or the
	// message was committed in the older layout).
	MessageLen int64
	// UTF8: the envelope needs SMTPUTF8 (RFC 6531) to be sent on, and
	// the message is to be treated as international mail. NewState
	// derives it from the addresses (omail-queue's envelope has no room
	// for a flag); remote delivery also looks at the header it sends.
	UTF8 bool
}

// Envelope returns the sender and every recipient.
func (s *State) Envelope() *envelope.Envelope {
	env := &envelope.Envelope{Sender: s.Sender}
	for _, r := range s.Rcpts {
		env.Rcpts = append(env.Rcpts, r.Addr)
	}
	return env
}

// Open reports whether some recipient still needs delivering or bouncing.
func (s *State) Open() bool {
	for _, r := range s.Rcpts {
		if !r.Status.Final() {
			return true
		}
	}
	return false
}

// NextTry is the earliest time a Todo recipient is due, and whether there
// is one.
func (s *State) NextTry() (int64, bool) {
	var t int64
	found := false
	for _, r := range s.Rcpts {
		if r.Status == Todo && (!found || r.NextTry < t) {
			t, found = r.NextTry, true
		}
	}
	return t, found
}

// The state file is a sequence of records, each ended by a NUL, so that
// addresses and error texts with any bytes but NUL are safe in it:
//
//	V1                       version
//	Q<unix seconds>          when the message was queued
//	F<sender>                envelope sender ("" for a bounce)
//	L<bytes>                 optional: the message's length in mess/ID
//	U                        optional: the message needs SMTPUTF8
//	R<status> <attempts> <nexttry> <address>
//	E<last error>            optional, belongs to the R before it
//	.                        end: a file without it is damaged
const stateVersion = "V1"

// MaxErrorText bounds a recorded error so a chatty peer cannot bloat files.
const MaxErrorText = 400

// Marshal encodes the state.
func (s *State) Marshal() []byte {
	var b bytes.Buffer
	rec := func(parts ...string) {
		for _, p := range parts {
			b.WriteString(p)
		}
		b.WriteByte(0)
	}
	rec(stateVersion)
	rec("Q", strconv.FormatInt(s.Queued, 10))
	rec("F", s.Sender)
	if s.MessageLen > 0 {
		rec("L", strconv.FormatInt(s.MessageLen, 10))
	}
	if s.UTF8 {
		rec("U")
	}
	for _, r := range s.Rcpts {
		rec("R", string(r.Status), " ", strconv.Itoa(r.Attempts), " ", strconv.FormatInt(r.NextTry, 10), " ", r.Addr)
		if r.LastError != "" {
			rec("E", cleanError(r.LastError))
		}
	}
	rec(".")
	return b.Bytes()
}

// cleanError keeps an error text to one printable line of bounded size.
func cleanError(s string) string {
	b := []byte(s)
	if len(b) > MaxErrorText {
		b = b[:MaxErrorText]
	}
	for i, c := range b {
		if c < 0x20 || c == 0x7f {
			b[i] = ' '
		}
	}
	return string(b)
}

// ErrCorrupt marks a state file that cannot be parsed.
var ErrCorrupt = errors.New("corrupt queue file")

func corrupt(why string) error { return fmt.Errorf("%w: %s", ErrCorrupt, why) }

// ParseState decodes a state file. Queue files are treated as hostile:
// anything unexpected is ErrCorrupt, never a panic or a guess.
func ParseState(id string, data []byte) (*State, error) {
	if len(data) == 0 || data[len(data)-1] != 0 {
		return nil, corrupt("not NUL-terminated")
	}
	recs := strings.Split(string(data[:len(data)-1]), "\x00")
	if len(recs) < 4 || recs[0] != stateVersion {
		return nil, corrupt("bad version or too short")
	}
	if recs[len(recs)-1] != "." {
		return nil, corrupt("no end marker")
	}
	recs = recs[1 : len(recs)-1]
	st := &State{ID: id}
	if !strings.HasPrefix(recs[0], "Q") {
		return nil, corrupt("no Q record")
	}
	q, err := strconv.ParseInt(recs[0][1:], 10, 64)
	if err != nil {
		return nil, corrupt("bad Q record")
	}
	st.Queued = q
	if !strings.HasPrefix(recs[1], "F") {
		return nil, corrupt("no F record")
	}
	st.Sender = recs[1][1:]
	for i, rec := range recs[2:] {
		if rec == "" {
			return nil, corrupt("empty record")
		}
		switch rec[0] {
		case 'L':
			n, err := strconv.ParseInt(rec[1:], 10, 64)
			if i != 0 || err != nil || n < 1 {
				return nil, corrupt("bad L record")
			}
			st.MessageLen = n
		case 'U':
			// Once, before the recipients, and nothing after the letter.
			if rec != "U" || st.UTF8 || len(st.Rcpts) > 0 {
				return nil, corrupt("bad U record")
			}
			st.UTF8 = true
		case 'R':
			r, err := parseRcpt(rec[1:])
			if err != nil {
				return nil, err
			}
			st.Rcpts = append(st.Rcpts, r)
		case 'E':
			if len(st.Rcpts) == 0 {
				return nil, corrupt("E before any R")
			}
			st.Rcpts[len(st.Rcpts)-1].LastError = cleanError(rec[1:])
		default:
			return nil, corrupt(fmt.Sprintf("unknown record %q", rec[0]))
		}
	}
	if len(st.Rcpts) == 0 {
		return nil, corrupt("no recipients")
	}
	return st, nil
}

func parseRcpt(s string) (Rcpt, error) {
	f := strings.SplitN(s, " ", 4)
	if len(f) != 4 || len(f[0]) != 1 || f[3] == "" {
		return Rcpt{}, corrupt("bad R record")
	}
	st := Status(f[0][0])
	switch st {
	case Todo, Done, Failed, Bounced:
	default:
		return Rcpt{}, corrupt("bad recipient status")
	}
	n, err1 := strconv.Atoi(f[1])
	t, err2 := strconv.ParseInt(f[2], 10, 64)
	if err1 != nil || err2 != nil || n < 0 || t < 0 {
		return Rcpt{}, corrupt("bad R numbers")
	}
	if envelope.CheckAddress(f[3]) != nil {
		return Rcpt{}, corrupt("bad recipient address")
	}
	return Rcpt{Addr: f[3], Status: st, Attempts: n, NextTry: t}, nil
}

// NewState is the state of a freshly queued message. It is marked UTF8
// when an address of the envelope is not ASCII: the one rule every way
// into the queue (omail-queue, omail-smtpd's in-process queueing,
// omail-inject, omail-unpack) applies alike.
func NewState(id string, queued time.Time, env *envelope.Envelope) *State {
	st := &State{ID: id, Queued: queued.Unix(), Sender: env.Sender, UTF8: !addr.ASCII(env.Sender)}
	for _, r := range env.Rcpts {
		st.Rcpts = append(st.Rcpts, Rcpt{Addr: r, Status: Todo})
		st.UTF8 = st.UTF8 || !addr.ASCII(r)
	}
	return st
}

// NextTryOf is State.NextTry read straight from a state file's bytes, for
// omail-deliver's start-up scan of a big queue: it looks only at the
// status and next-try fields of the recipient records, and builds
// nothing. ok is false when no recipient is Todo or when the bytes do not
// read as a state file; it checks no more than it reads: ParseState,
// which every delivery attempt runs, is the judge of damage.
func NextTryOf(data []byte) (next int64, ok bool) {
	next, _, ok = DueOf(data)
	return next, ok
}

// DueOf is NextTryOf and also the fewest attempts any Todo recipient has
// had: the start-up scan puts a message whose every recipient has failed
// many times in the slow lane (qmanager).
func DueOf(data []byte) (next int64, attempts int, ok bool) {
	if !bytes.HasPrefix(data, []byte(stateVersion+"\x00")) || !ended(data) {
		return 0, 0, false
	}
	for rest := data; len(rest) > 0; {
		i := bytes.IndexByte(rest, 0)
		rec := rest[:i]
		rest = rest[i+1:]
		// R<status> <attempts> <nexttry> <address>
		if len(rec) < 3 || rec[0] != 'R' || rec[1] != byte(Todo) || rec[2] != ' ' {
			continue
		}
		f := rec[3:]
		sp := bytes.IndexByte(f, ' ')
		if sp < 0 {
			return 0, 0, false
		}
		// The attempts count only sorts a message into a lane: read
		// leniently, it never makes the due time unreadable.
		n, good := parseUint(f[:sp])
		if !good {
			n = 0
		}
		n = min(n, math.MaxInt32)
		f = f[sp+1:]
		if sp = bytes.IndexByte(f, ' '); sp < 0 {
			return 0, 0, false
		}
		t, good := parseUint(f[:sp])
		if !good {
			return 0, 0, false
		}
		if !ok || t < next {
			next = t
		}
		if !ok || int(n) < attempts {
			attempts = int(n)
		}
		ok = true
	}
	return next, attempts, ok
}

// parseUint reads a number as strconv.ParseInt does for ParseState (an
// optional plus sign, decimal digits, below 2^63), without allocating.
func parseUint(b []byte) (int64, bool) {
	if len(b) > 0 && b[0] == '+' {
		b = b[1:]
	}
	if len(b) == 0 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
		if n > math.MaxInt64 {
			return 0, false
		}
	}
	return int64(n), true
}
