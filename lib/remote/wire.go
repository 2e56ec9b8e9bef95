package remote

import (
	"bufio"
	"io"
)

// wireWriter turns message bytes as the queue holds them into SMTP DATA
// bytes: every line ends in CRLF whatever it ended in (LF, CRLF, or a
// bare CR, which is taken for a line end rather than passed on: a bare
// CR on the wire is what SMTP smuggling is made of), and with stuff set
// a line starting with '.' gets another '.' (RFC 5321 4.5.2). Finish
// completes the last line and, with stuff, writes the final ".".
//
// A line longer than RFC 5321 allows (4.5.3.1.6: 1000 octets with its
// CRLF, the dot of dot-stuffing included) is broken, as Postfix does
// (smtp_line_length_limit): after 998 octets a CRLF and a SPACE are
// inserted, and the line goes on. In a header that is a fold; in a
// base64 body the space is ignored by decoders; in text it is a line
// break more. omail-smtpd and others refuse longer lines, so the
// alternative is a bounce. The octets counted include the stuffing dot
// whether or not this writer stuffs, so that the measuring pass (which
// signs) and the sending pass break lines at the same places: DKIM signs
// exactly the bytes sent.
//
// It also notes what the message needs from the peer: its size on the
// wire (before dot-stuffing) and whether it has 8-bit bytes.
type wireWriter struct {
	w        *bufio.Writer
	stuff    bool
	bol      bool // at the beginning of a line
	cr       bool // the last byte was a CR, its LF not seen yet
	col      int  // octets on the current line, a stuffing dot included
	n        int64
	eightBit bool
}

// maxLine is the longest line sent, in octets without its CRLF.
const maxLine = 998

func newWireWriter(w io.Writer, stuff bool) *wireWriter {
	return &wireWriter{w: bufio.NewWriterSize(w, 32<<10), stuff: stuff, bol: true}
}

func (ww *wireWriter) Write(b []byte) (int, error) {
	for _, c := range b {
		if ww.cr {
			ww.cr = false
			ww.crlf()
			if c == '\n' {
				continue
			}
		}
		switch c {
		case '\r':
			ww.cr = true
			continue
		case '\n':
			ww.crlf()
			continue
		}
		if ww.col == maxLine {
			ww.crlf()
			ww.w.WriteByte(' ')
			ww.n++
			ww.col, ww.bol = 1, false
		}
		if ww.bol && c == '.' {
			if ww.stuff {
				ww.w.WriteByte('.')
			}
			ww.col++
		}
		if c >= 0x80 {
			ww.eightBit = true
		}
		ww.w.WriteByte(c)
		ww.n++
		ww.col++
		ww.bol = false
	}
	// bufio.Writer keeps its first error; an empty Write returns it.
	if _, err := ww.w.Write(nil); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (ww *wireWriter) crlf() {
	ww.w.WriteString("\r\n")
	ww.n += 2
	ww.bol = true
	ww.col = 0
}

// Finish ends the last line with CRLF if it lacks one, writes the "."
// line when dot-stuffing, and flushes.
func (ww *wireWriter) Finish() error {
	if ww.cr {
		ww.cr = false
		ww.crlf()
	}
	if !ww.bol {
		ww.crlf()
	}
	if ww.stuff {
		ww.w.WriteString(".\r\n")
	}
	return ww.w.Flush()
}
