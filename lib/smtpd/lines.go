package smtpd

import (
	"bufio"
	"errors"
	"io"
	"time"
)

// Line limits, RFC 5321 4.5.3.1 (lengths without the CRLF). Command
// lines may be longer than the RFC's 512 octets because ESMTP parameters
// are allowed to extend them; AUTH responses get RFC 4954's 12288.
const (
	maxCommand  = 998
	maxText     = 998
	maxAuthLine = 12288
)

// Errors that end a session: bytes that make the line structure
// ambiguous. A receiver that reads "\n.\n" or "\r.\r\n" as the end of a
// message while the next hop does not is what SMTP smuggling exploits,
// so any CR or LF that is not part of a CRLF, and any NUL, is refused.
var (
	errBareLF = errors.New("bare LF")
	errBareCR = errors.New("bare CR")
	errNUL    = errors.New("NUL byte")
)

// readLine reads one CRLF-terminated line and returns it without the
// CRLF. A line longer than max is read to its end and discarded, and
// long is true. The returned slice is valid until the next call.
func (s *session) readLine(max int) (line []byte, long bool, err error) {
	if s.br.Buffered() == 0 {
		// Nothing more pipelined: the client waits for our replies.
		if err := s.flush(); err != nil {
			return nil, false, err
		}
	}
	if s.cfg.Timeout > 0 {
		s.conn.SetReadDeadline(time.Now().Add(s.cfg.Timeout))
	}
	s.line = s.line[:0]
	prevCR := false
	for {
		frag, err := s.br.ReadSlice('\n')
		for _, c := range frag {
			switch {
			case c == 0:
				return nil, false, errNUL
			case prevCR && c != '\n':
				return nil, false, errBareCR
			case c == '\n' && !prevCR:
				return nil, false, errBareLF
			}
			prevCR = c == '\r'
		}
		if !long {
			if len(s.line)+len(frag) > max+2 {
				long = true
				s.line = s.line[:0]
			} else {
				s.line = append(s.line, frag...)
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if err == io.EOF && (len(frag) > 0 || len(s.line) > 0 || long) {
				err = io.ErrUnexpectedEOF
			}
			return nil, false, err
		}
		break
	}
	if long {
		return nil, true, nil
	}
	return s.line[:len(s.line)-2], false, nil
}

// flush sends the replies written so far.
func (s *session) flush() error {
	if s.w.Buffered() == 0 {
		return nil
	}
	// Always set (zero: none), so that a connection that bounds writes
	// on its own (lib/resident, draining) bounds this one from now.
	var deadline time.Time
	if s.cfg.Timeout > 0 {
		deadline = time.Now().Add(s.cfg.Timeout)
	}
	s.conn.SetWriteDeadline(deadline)
	return s.w.Flush()
}
