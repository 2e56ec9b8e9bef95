package remote

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
)

// The SMTP conversation's own reader and writer. Replies are read here
// rather than with net/textproto, whose ReadResponse refuses a reply
// line that is a bare code ("250" CRLF), which RFC 5321 4.2 allows:
//
//	Reply-line = *( Reply-code "-" [ textstring ] CRLF )
//	             Reply-code [ SP textstring ] CRLF
//
// Taking such a reply for a lost connection after the message was sent
// would send it again at every retry.

// maxReplyLine bounds a reply line from the server (RFC 5321 allows
// 512 octets) and maxReplyLines the lines of one reply, so that a broken
// or hostile server cannot make us buffer without end.
const (
	maxReplyLine  = 64 << 10
	maxReplyLines = 1000
)

// replyError is a reply that is not SMTP: the connection cannot be
// trusted any further, as if it were lost.
type replyError struct{ why string }

func (e *replyError) Error() string { return "malformed reply: " + e.why }

// smtpConn is one direction each way of an SMTP connection: replies are
// read from r, commands written to w.
type smtpConn struct {
	r *bufio.Reader
	w *bufio.Writer
}

func newSMTPConn(c net.Conn) *smtpConn {
	return &smtpConn{r: bufio.NewReader(c), w: bufio.NewWriter(c)}
}

// printfLine writes one command line with CRLF and sends it.
func (c *smtpConn) printfLine(format string, args ...any) error {
	fmt.Fprintf(c.w, format, args...)
	c.w.WriteString("\r\n")
	return c.w.Flush()
}

// readReply reads one reply: its code, and its text lines joined with
// "\n" (a line that is a bare code adds an empty line of text). Every
// line must start with the same three-digit code, 2xx to 5xx; a line
// end is CRLF or LF alone. Anything else is a *replyError; a read that
// fails (EOF, a timeout) returns that error.
func readReply(r *bufio.Reader) (code int, msg string, err error) {
	var text []string
	for n := 0; ; n++ {
		if n == maxReplyLines {
			return 0, "", &replyError{fmt.Sprintf("more than %d lines", maxReplyLines)}
		}
		line, err := readLine(r)
		if err != nil {
			return 0, "", err
		}
		c, last, rest, err := parseReplyLine(line)
		if err != nil {
			return 0, "", err
		}
		if n > 0 && c != code {
			return 0, "", &replyError{fmt.Sprintf("code %d in a reply that began with %d", c, code)}
		}
		code = c
		text = append(text, rest)
		if last {
			break
		}
	}
	var b bytes.Buffer
	for i, t := range text {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(t)
	}
	return code, b.String(), nil
}

// readLine reads one line without its CRLF (or LF), at most
// maxReplyLine octets long.
func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		part, err := r.ReadSlice('\n')
		if len(line)+len(part) > maxReplyLine+2 {
			return nil, &replyError{fmt.Sprintf("a line too long (over %d octets)", maxReplyLine)}
		}
		line = append(line, part...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err == io.EOF && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			return nil, err
		}
		line = bytes.TrimSuffix(line[:len(line)-1], []byte("\r"))
		return line, nil
	}
}

// parseReplyLine splits "NNN", "NNN text" or "NNN-text"; last is false
// for the "-" form, which more lines follow.
func parseReplyLine(line []byte) (code int, last bool, text string, err error) {
	if len(line) < 3 || line[0] < '2' || line[0] > '5' || !isDigit(line[1]) || !isDigit(line[2]) {
		return 0, false, "", &replyError{fmt.Sprintf("%q does not start with a reply code", clip(string(line)))}
	}
	code = int(line[0]-'0')*100 + int(line[1]-'0')*10 + int(line[2]-'0')
	switch {
	case len(line) == 3:
		return code, true, "", nil
	case line[3] == ' ':
		return code, true, string(line[4:]), nil
	case line[3] == '-':
		return code, false, string(line[4:]), nil
	}
	return 0, false, "", &replyError{fmt.Sprintf("%q: no space or hyphen after the code", clip(string(line)))}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
