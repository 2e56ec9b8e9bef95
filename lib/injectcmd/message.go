package injectcmd

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
)

// MaxHeader bounds the header block, which is held in memory to be fixed
// up; the body is streamed.
const MaxHeader = 4 << 20

// ErrHeaderTooBig is a header block over MaxHeader.
var ErrHeaderTooBig = errors.New("header block too large")

// Field is one header field with its continuation lines, as it came,
// each line ended by "\n".
type Field struct {
	Name string // as written
	Raw  []byte // "Name: value\n\tmore\n"
}

// Value is the field's body with continuation lines unfolded.
func (f Field) Value() string {
	_, v, _ := strings.Cut(string(f.Raw), ":")
	v = strings.ReplaceAll(v, "\r\n", "\n")
	v = strings.ReplaceAll(v, "\n", "")
	return strings.TrimSpace(v)
}

// Is reports whether the field has the given name, case-insensitively.
func (f Field) Is(name string) bool { return strings.EqualFold(f.Name, name) }

// Reader reads a message from a sendmail caller: it ends at EOF or, unless
// dots are ignored, at a line holding only ".". Lines come out with "\n"
// endings (a "\r\n" from the caller becomes "\n"): the queue keeps
// Unix line endings, and remote delivery writes CRLF.
type Reader struct {
	br         *bufio.Reader
	ignoreDots bool
	midLine    bool // the last chunk did not end a line
	ended      bool
	pending    []byte // a line read ahead while parsing headers
}

// NewReader wraps r.
func NewReader(r io.Reader, ignoreDots bool) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, 64*1024), ignoreDots: ignoreDots}
}

// chunk returns the next piece of input: a whole line, or part of a line
// longer than the buffer. io.EOF at the end.
func (r *Reader) chunk() ([]byte, error) {
	if r.pending != nil {
		p := r.pending
		r.pending = nil
		return p, nil
	}
	if r.ended {
		return nil, io.EOF
	}
	b, err := r.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		r.midLine = true
		return b, nil
	}
	if err != nil && err != io.EOF {
		return nil, err
	}
	if len(b) == 0 {
		r.ended = true
		return nil, io.EOF
	}
	startsLine := !r.midLine
	r.midLine = b[len(b)-1] != '\n'
	if startsLine && !r.ignoreDots && (string(b) == ".\n" || string(b) == ".\r\n") {
		r.ended = true
		return nil, io.EOF
	}
	if bytes.HasSuffix(b, []byte("\r\n")) {
		b = b[:len(b)-1]
		b[len(b)-1] = '\n'
	}
	if err == io.EOF {
		r.ended = true
	}
	return b, nil
}

// ReadHeader reads the header block. It stops at the blank line (which
// it consumes) or at the first line that is not a header field, which is
// left for the body. The bool reports whether a blank line separated the
// header from the body. Mbox "From " lines before the header are dropped
// (skipFromLines).
func (r *Reader) ReadHeader() ([]Field, bool, error) {
	if err := r.skipFromLines(); err != nil {
		return nil, false, err
	}
	var fields []Field
	total := 0
	for {
		b, err := r.chunk()
		if err == io.EOF {
			return fields, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		total += len(b)
		if total > MaxHeader {
			return nil, false, ErrHeaderTooBig
		}
		line := append([]byte(nil), b...)
		// A header line longer than the buffer: gather the whole line.
		for line[len(line)-1] != '\n' {
			more, err := r.chunk()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, false, err
			}
			total += len(more)
			if total > MaxHeader {
				return nil, false, ErrHeaderTooBig
			}
			line = append(line, more...)
		}
		if line[len(line)-1] != '\n' {
			line = append(line, '\n')
		}
		if string(line) == "\n" {
			return fields, true, nil
		}
		if (line[0] == ' ' || line[0] == '\t') && len(fields) > 0 {
			f := &fields[len(fields)-1]
			f.Raw = append(f.Raw, line...)
			continue
		}
		name, ok := fieldName(line)
		if !ok {
			r.pending = line
			return fields, false, nil
		}
		fields = append(fields, Field{Name: name, Raw: line})
	}
}

// skipFromLines drops the lines matching ">*From " that the input starts
// with, as Postfix's sendmail does: a message saved from an mbox (or
// piped on by a program that got one) begins with its "From sender date"
// line, which is no header field and would make the whole header body.
// A line of any length is dropped as it is read, never held whole.
func (r *Reader) skipFromLines() error {
	for {
		b, err := r.chunk()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if !bytes.HasPrefix(bytes.TrimLeft(b, ">"), []byte("From ")) {
			r.pending = b // the next chunk: the header's first line
			return nil
		}
		for b[len(b)-1] != '\n' { // the rest of a long line
			if b, err = r.chunk(); err == io.EOF {
				return nil
			} else if err != nil {
				return err
			}
		}
	}
}

// fieldName returns the name of a header field line: printable ASCII up
// to a colon, no spaces (a space before the colon, as in "Subject :", is
// tolerated, as RFC 822 allowed it).
func fieldName(line []byte) (string, bool) {
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return "", false
	}
	name := strings.TrimRight(string(line[:i]), " \t")
	if name == "" {
		return "", false
	}
	for j := 0; j < len(name); j++ {
		if name[j] <= ' ' || name[j] >= 0x7f {
			return "", false
		}
	}
	return name, true
}

// ReadError is a failure to read the caller's input, as opposed to a
// failure to write it on.
type ReadError struct{ Err error }

func (e *ReadError) Error() string { return "reading the message: " + e.Err.Error() }
func (e *ReadError) Unwrap() error { return e.Err }

// WriteBody copies the rest of the input to w, line by line.
func (r *Reader) WriteBody(w io.Writer) error {
	for {
		b, err := r.chunk()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return &ReadError{err}
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
}
