package smtpd

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"omail/lib/envelope"
)

// countingReader tells how much of the input the server has read.
type countingReader struct {
	data []byte
	pos  int
}

func (r *countingReader) Read(b []byte) (int, error) {
	if r.pos >= len(r.data) {
		return 0, io.EOF
	}
	// Small reads, so that lines cross buffer boundaries.
	n := copy(b[:min(len(b), 7)], r.data[r.pos:])
	r.pos += n
	return n, nil
}

// FuzzSession feeds arbitrary bytes as a whole session. The server must
// not panic or hang, and must never queue a message whose end, CRLF .
// CRLF, it has not read: the n-th message committed needs n such ends
// in what was read so far. Queued text never holds a CR.
func FuzzSession(f *testing.F) {
	for _, s := range []string{
		"EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<u@us.example>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n",
		"HELO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<u@far.example>\r\nDATA\r\nhi\n.\nMAIL FROM:<e@b>\r\nRCPT TO:<v@us.example>\r\nDATA\r\nx\r\n.\r\n",
		"HELO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<u@us.example>\r\nDATA\r\nhi\r.\r\nx\r\n.\r\n",
		"MAIL FROM:<a@b>\r\nRCPT TO:<u@us.example>\r\nDATA\r\n..\r\n.x\r\n\x00.\r\n.\r\n",
		"AUTH PLAIN\r\n*\r\nSTARTTLS\r\nGET / HTTP/1.1\r\n",
		"MAIL FROM:<a@b> SIZE=99999999999\r\nRCPT TO:<\"a@b\"@us.example>\r\n",
	} {
		f.Add([]byte(s))
	}
	base := testConfig(f, &memQueue{}, nil)
	f.Fuzz(func(t *testing.T, in []byte) {
		c := *base
		cfg := &c
		cfg.DataBytes = 10000
		r := &countingReader{data: in}
		conn := &scriptConn{r: r}
		ends := 0
		cfg.Queue = func() (Sink, error) { return &checkSink{t: t, r: r, ends: &ends}, nil }
		Serve(conn, cfg)
	})
}

type checkSink struct {
	t    *testing.T
	r    *countingReader
	ends *int
	buf  bytes.Buffer
}

func (s *checkSink) Write(b []byte) (int, error) { return s.buf.Write(b) }
func (s *checkSink) Abort()                      {}
func (s *checkSink) Commit(e *envelope.Envelope) (int, error) {
	*s.ends++
	read := string(s.r.data[:s.r.pos])
	if n := strings.Count(read, "\r\n.\r\n"); n < *s.ends {
		s.t.Fatalf("message %d committed with %d end-of-data sequences read: %q", *s.ends, n, read)
	}
	if strings.ContainsRune(s.buf.String(), '\r') {
		s.t.Fatalf("CR in queued message %q", s.buf.String())
	}
	return 0, nil
}
