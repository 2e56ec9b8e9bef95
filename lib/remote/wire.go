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
// It also notes what the message needs from the peer: its size on the
// wire (before dot-stuffing) and whether it has 8-bit bytes.
type wireWriter struct {
	w        *bufio.Writer
	stuff    bool
	bol      bool // at the beginning of a line
	cr       bool // the last byte was a CR, its LF not seen yet
	n        int64
	eightBit bool
}

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
		if ww.bol && c == '.' && ww.stuff {
			ww.w.WriteByte('.')
		}
		if c >= 0x80 {
			ww.eightBit = true
		}
		ww.w.WriteByte(c)
		ww.n++
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
