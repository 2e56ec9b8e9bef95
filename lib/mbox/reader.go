package mbox

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
)

// ErrNotMbox is what Reader.Next returns for input that does not start
// with a From_ line.
var ErrNotMbox = errors.New("not an mbox: no From_ line at the start")

// Reader splits an mbox into messages as a stream. Two inputs of omail
// are mbox-shaped: the original omail's bundles (a gzip'd mbox fragment,
// which lib/bundle reads with a Reader) and the mailspool files
// omail-pack packs with proxyscanmail. A message starts at a line
// beginning "From " at the start of the input or after a line break; its
// body is every line up to the next such line, with mboxrd quoting
// undone (">From " loses one '>') and the one blank line that separates
// messages dropped.
type Reader struct {
	br      *bufio.Reader
	from    string // the pending From_ line, without its newline
	started bool
	eof     bool
	body    *msgBody
	err     error
}

// NewReader reads an mbox from r.
func NewReader(r io.Reader) *Reader {
	br, ok := r.(*bufio.Reader)
	if !ok || br.Size() < 4096 {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	return &Reader{br: br}
}

// Next returns the envelope sender of the next message (from its From_
// line; "MAILER-DAEMON" there is the null sender) and its body. It
// returns io.EOF after the last message, ErrNotMbox when the input does
// not start with a From_ line.
func (m *Reader) Next() (sender string, body io.Reader, err error) {
	if m.err != nil {
		return "", nil, m.err
	}
	if m.body != nil {
		if _, err := io.Copy(io.Discard, m.body); err != nil {
			m.err = err
			return "", nil, err
		}
		m.body = nil
	}
	if !m.started {
		m.started = true
		l, err := m.br.ReadSlice('\n')
		if err == bufio.ErrBufferFull || len(l) < 5 || string(l[:5]) != "From " {
			m.err = ErrNotMbox
			if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
				m.err = err
			}
			return "", nil, m.err
		}
		if err != nil && err != io.EOF {
			m.err = err
			return "", nil, err
		}
		m.from = strings.TrimRight(string(l), "\r\n")
		m.eof = err == io.EOF
	}
	if m.from == "" {
		return "", nil, io.EOF
	}
	sender = senderOf(m.from)
	m.from = ""
	m.body = &msgBody{m: m, atStart: true, eof: m.eof}
	return sender, m.body, nil
}

// fromSender takes the address out of "From addr date".
func senderOf(line string) string {
	f := strings.Fields(line)
	if len(f) < 2 || f[1] == "MAILER-DAEMON" {
		return ""
	}
	s := strings.TrimSuffix(strings.TrimPrefix(f[1], "<"), ">")
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return ""
		}
	}
	if len(s) > 1024 {
		return ""
	}
	return s
}

// fromPrefix is fromLine, for comparing with bytes.
var fromPrefix = []byte(fromLine)

// msgBody reads one message's body.
type msgBody struct {
	m       *Reader
	atStart bool   // the next chunk starts a line
	blank   bool   // a blank line is held back: it may be the separator
	pend    []byte // bytes read but not yet returned
	nl      bool   // a held blank line is to be returned before pend
	eof     bool   // the input has ended
	done    bool
}

func (b *msgBody) Read(p []byte) (int, error) {
	for {
		if b.nl && len(p) > 0 {
			p[0] = '\n'
			b.nl = false
			return 1, nil
		}
		if len(b.pend) > 0 {
			n := copy(p, b.pend)
			b.pend = b.pend[n:]
			return n, nil
		}
		if b.done {
			return 0, io.EOF
		}
		if b.eof {
			b.done = true // a held blank line at the end is the separator
			continue
		}
		l, err := b.m.br.ReadSlice('\n')
		if err != nil && err != bufio.ErrBufferFull && err != io.EOF {
			b.m.err = err
			return 0, err
		}
		if err == io.EOF {
			b.eof = true
			b.m.eof = true
			if len(l) == 0 {
				continue
			}
		}
		start := b.atStart
		b.atStart = err == nil
		if start {
			if bytes.HasPrefix(l, fromPrefix) {
				// The next message. A From_ line is short; one longer
				// than the buffer is taken up to the buffer's end.
				b.m.from = strings.TrimRight(string(l), "\r\n")
				if err == bufio.ErrBufferFull {
					b.m.skipLine()
				}
				b.done = true
				continue
			}
			if len(l) == 1 && l[0] == '\n' {
				if b.blank {
					b.nl = true // the earlier one was not the separator
				}
				b.blank = true
				continue
			}
			if i := bytes.IndexFunc(l, func(r rune) bool { return r != '>' }); i > 0 && bytes.HasPrefix(l[i:], fromPrefix) {
				l = l[1:]
			}
		}
		if b.blank {
			b.blank = false
			b.nl = true
		}
		b.pend = l
	}
}

// skipLine discards the rest of an over-long line.
func (m *Reader) skipLine() {
	for {
		_, err := m.br.ReadSlice('\n')
		if err != bufio.ErrBufferFull {
			if err == io.EOF {
				m.eof = true
			}
			return
		}
	}
}
