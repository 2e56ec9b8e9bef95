package outcome

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// A report is how a delivery child (omail-deliver -local, -remote) tells
// its parent the outcome for one recipient:
//
//	LETTER NUL TEXT NUL [FORWARD NUL]...
//
// LETTER is qmail's delivery report letter: K (delivered), Z (temporary
// failure) or D (permanent failure). TEXT is one line (Line). Each
// forwarding address ends with a NUL, which no address can contain. The
// Prefix is not carried: the parent, which knows the recipient, adds it.
// A report holds no newline, so a child that reports on several
// recipients writes one report per line (ReadReports).
const (
	LetterOK   = 'K'
	LetterTemp = 'Z'
	LetterPerm = 'D'
)

// Letter is the report letter of s; anything unknown reports as Z.
func (s Status) Letter() byte {
	switch s {
	case OK:
		return LetterOK
	case Perm:
		return LetterPerm
	}
	return LetterTemp
}

// statusOf is the Status of a report letter.
func statusOf(letter string) (Status, bool) {
	switch letter {
	case string(LetterOK):
		return OK, true
	case string(LetterTemp):
		return Temp, true
	case string(LetterPerm):
		return Perm, true
	}
	return Temp, false
}

// AppendReport appends r's report to b. A forwarding address holding a
// NUL or a newline cannot be reported: it makes the report a temporary
// failure, rather than one its parent would read differently.
func AppendReport(b []byte, r Result) []byte {
	for _, a := range r.Forward {
		if a == "" || strings.ContainsAny(a, "\x00\n") {
			return AppendReport(b, Tempf("4.3.0 forwarding address %q cannot be reported", a))
		}
	}
	b = append(b, r.Status.Letter(), 0)
	b = append(b, Line(r.Text)...)
	b = append(b, 0)
	for _, a := range r.Forward {
		b = append(b, a...)
		b = append(b, 0)
	}
	return b
}

// ParseReport reads one report, all of b. The child is not trusted to
// be well-behaved: anything but a well-formed report is an error, which
// the parent turns into a temporary failure.
func ParseReport(b []byte) (Result, error) {
	if len(b) == 0 || b[len(b)-1] != 0 {
		return Result{}, fmt.Errorf("report not NUL-terminated: %q", b)
	}
	f := strings.Split(string(b[:len(b)-1]), "\x00")
	if len(f) < 2 {
		return Result{}, fmt.Errorf("short report: %q", b)
	}
	var r Result
	var ok bool
	if r.Status, ok = statusOf(f[0]); !ok {
		return Result{}, fmt.Errorf("bad status in report: %q", b)
	}
	r.Text = Line(f[1])
	for _, a := range f[2:] {
		if a == "" || strings.Contains(a, "\n") {
			return Result{}, fmt.Errorf("bad address in report: %q", b)
		}
		r.Forward = append(r.Forward, a)
	}
	return r, nil
}

// maxReportLine bounds one line of ReadReports: a text of MaxText bytes,
// and room for forwarding addresses.
const maxReportLine = 64 << 10

// ReadReports reads up to n reports from r, one per line (each
// AppendReport's bytes and a newline), and returns those it read. Fewer
// than n come with the error that stopped it: io.ErrUnexpectedEOF when
// r ended early.
func ReadReports(r io.Reader, n int) ([]Result, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxReportLine)
	out := make([]Result, 0, n)
	for len(out) < n {
		if !sc.Scan() {
			if err := sc.Err(); err != nil {
				return out, err
			}
			return out, io.ErrUnexpectedEOF
		}
		res, err := ParseReport(sc.Bytes())
		if err != nil {
			return out, err
		}
		out = append(out, res)
	}
	return out, nil
}
