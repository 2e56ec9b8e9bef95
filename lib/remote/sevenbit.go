package remote

import (
	"bufio"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message/textproto"

	"omail/lib/dkim"
	"omail/lib/outcome"
)

// A next hop that does not offer 8BITMIME (RFC 6152) may only be sent
// 7-bit data. A message with 8-bit bytes in its body is converted for it
// (RFC 6152 section 3, RFC 1652 before it) rather than sent as it is:
//
//   - every MIME leaf part whose body holds 8-bit bytes is re-encoded,
//     quoted-printable for text (base64 when more than a third of its
//     bytes are 8-bit, where quoted-printable would be a quarter longer
//     than base64), base64 for anything else; its
//     Content-Transfer-Encoding says so;
//   - multipart and message/rfc822 entities are walked into, their
//     structure and boundaries kept, and an 8bit or binary
//     Content-Transfer-Encoding on them becomes 7bit; the preamble and
//     epilogue of a multipart (text no MIME reader shows) are dropped;
//   - parts without 8-bit bytes, and every header field, are left as
//     they are, but for the fields above and MIME-Version, added to a
//     message that lacks it;
//   - a message that is not MIME (no Content-Type) is taken for text: its
//     body is encoded as quoted-printable with
//     Content-Type: text/plain; charset=utf-8 when it is UTF-8, else
//     charset=unknown-8bit (RFC 1428).
//
// What cannot be converted is refused, and bounces (5.6.3): 8-bit bytes
// in a header (that needs SMTPUTF8, RFC 6532; headers are never
// rewritten), a part that says it is quoted-printable or base64 and holds
// 8-bit bytes anyway, a multipart without a boundary, structure nested
// deeper than maxDepth.
//
// The conversion is one streaming pass (go-message's textproto reads the
// headers and splits multiparts; bodies are never held in memory): each
// leaf body is spooled to a temporary file while it is measured, then
// written out, encoded or not; the converted message goes to another
// temporary file, which the first pass then measures and signs like any
// message. Both files are unlinked at once, so nothing is left behind.
// A header is held in memory while its entity is converted.

// maxDepth bounds nesting of multiparts and message/rfc822 parts.
const maxDepth = 32

// convertError is a message that cannot be made 7-bit: a permanent
// failure of this delivery to a host without 8BITMIME.
type convertError struct{ why string }

func (e *convertError) Error() string { return "cannot convert to 7-bit: " + e.why }

// sevenBit converts the message read from r into w, as above.
// header8bitOK lets 8-bit bytes in headers through (the next hop offers
// SMTPUTF8). Errors other than *convertError are the system's (I/O).
func sevenBit(w io.Writer, r io.Reader, header8bitOK bool) error {
	spool, err := tempFile()
	if err != nil {
		return err
	}
	defer spool.Close()
	c := &converter{spool: spool, header8bitOK: header8bitOK}
	bw := bufio.NewWriterSize(w, 32<<10)
	br := bufio.NewReaderSize(r, 32<<10)
	h, err := c.readHeader(br)
	if err != nil {
		return err
	}
	emit := func(h textproto.Header) (io.Writer, error) {
		return bw, textproto.WriteHeader(bw, h)
	}
	if err := c.entity(h, br, emit, 0, "text/plain", true); err != nil {
		return err
	}
	return bw.Flush()
}

// tempFile is a read-write temporary file that has no name any more.
func tempFile() (*os.File, error) {
	f, err := os.CreateTemp("", "omail-7bit")
	if err != nil {
		return nil, err
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

type converter struct {
	spool        *os.File // a leaf body, while it is measured
	header8bitOK bool
}

func (c *converter) readHeader(br *bufio.Reader) (textproto.Header, error) {
	h, err := textproto.ReadHeader(br)
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || isSystemError(err) {
			return h, err
		}
		return h, &convertError{fmt.Sprintf("malformed header (%v)", err)}
	}
	return h, c.checkHeader(h)
}

// checkHeader refuses 8-bit bytes in a header, unless the next hop takes
// them (SMTPUTF8): a header is never rewritten.
func (c *converter) checkHeader(h textproto.Header) error {
	if c.header8bitOK {
		return nil
	}
	for f := h.Fields(); f.Next(); {
		if raw, _ := f.Raw(); !asciiBytes(raw) {
			return &convertError{"a header has 8-bit bytes (" + clip(f.Key()) + "), which only SMTPUTF8 could carry"}
		}
	}
	return nil
}

// isSystemError tells a failing file from a malformed message.
func isSystemError(err error) bool {
	var pe *os.PathError
	return errors.As(err, &pe)
}

// entity converts one entity whose header h has been read and whose body
// is body. emit writes the (changed) header and returns where the body
// goes. defType is the Content-Type it has when it says none (text/plain,
// message/rfc822 in a multipart/digest); top marks the message itself.
func (c *converter) entity(h textproto.Header, body io.Reader, emit func(textproto.Header) (io.Writer, error), depth int, defType string, top bool) error {
	if depth > maxDepth {
		return &convertError{fmt.Sprintf("MIME structure nested deeper than %d", maxDepth)}
	}
	mt, params := defType, map[string]string(nil)
	if ct := h.Get("Content-Type"); ct != "" {
		var err error
		mt, params, err = mime.ParseMediaType(ct)
		// A bad parameter still gives the type, which is all a leaf
		// needs; a multipart needs its boundary, checked below.
		if err != nil && (err != mime.ErrInvalidMediaParameter || strings.HasPrefix(mt, "multipart/")) {
			return &convertError{fmt.Sprintf("bad Content-Type %q", clip(ct))}
		}
	}
	cte := strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding")))
	switch {
	case strings.HasPrefix(mt, "multipart/"):
		if cte != "" && cte != "7bit" && cte != "8bit" && cte != "binary" {
			return &convertError{"a multipart with Content-Transfer-Encoding " + clip(cte)}
		}
		boundary := params["boundary"]
		w, err := emit(fieldsChanged(h, cte == "8bit" || cte == "binary", nil, "Content-Transfer-Encoding: 7bit"))
		if err != nil {
			return err
		}
		mw := textproto.NewMultipartWriter(w)
		if err := mw.SetBoundary(boundary); err != nil {
			return &convertError{fmt.Sprintf("bad multipart boundary %q", clip(boundary))}
		}
		partType := "text/plain"
		if mt == "multipart/digest" {
			partType = "message/rfc822"
		}
		mr := textproto.NewMultipartReader(body, boundary)
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				if isSystemError(err) {
					return err
				}
				return &convertError{fmt.Sprintf("broken multipart (%v)", err)}
			}
			if err := c.checkHeader(p.Header); err != nil {
				return err
			}
			emitPart := func(h textproto.Header) (io.Writer, error) { return mw.CreatePart(h) }
			if err := c.entity(p.Header, p, emitPart, depth+1, partType, false); err != nil {
				return err
			}
		}
		return mw.Close()
	case mt == "message/rfc822":
		if cte != "" && cte != "7bit" && cte != "8bit" && cte != "binary" {
			// RFC 2046 5.2.1 allows no other; an encoded one is opaque
			// 7-bit data, as a leaf.
			return c.leaf(h, body, emit, mt, cte, top)
		}
		w, err := emit(fieldsChanged(h, cte == "8bit" || cte == "binary", nil, "Content-Transfer-Encoding: 7bit"))
		if err != nil {
			return err
		}
		br := bufio.NewReader(body)
		ih, err := c.readHeader(br)
		if errors.Is(err, io.ErrUnexpectedEOF) {
			// The part ends inside the encapsulated message's header:
			// the message is broken, not the file it is read from.
			return &convertError{"a message/rfc822 part cut short in its header"}
		}
		if err != nil {
			return err
		}
		emitInner := func(h textproto.Header) (io.Writer, error) { return w, textproto.WriteHeader(w, h) }
		return c.entity(ih, br, emitInner, depth+1, "text/plain", false)
	}
	return c.leaf(h, body, emit, mt, cte, top)
}

// leaf converts a body that is not walked into: left as it is when it
// holds no 8-bit byte, re-encoded when it does.
func (c *converter) leaf(h textproto.Header, body io.Reader, emit func(textproto.Header) (io.Writer, error), mt, cte string, top bool) error {
	if _, err := c.spool.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := c.spool.Truncate(0); err != nil {
		return err
	}
	var st bodyStats
	n, err := io.Copy(io.MultiWriter(c.spool, &st), body)
	if err != nil {
		if isSystemError(err) {
			return err
		}
		return &convertError{fmt.Sprintf("broken MIME part (%v)", err)}
	}
	if _, err := c.spool.Seek(0, io.SeekStart); err != nil {
		return err
	}
	spooled := io.LimitReader(c.spool, n)
	if st.eightBit == 0 {
		w, err := emit(h)
		if err != nil {
			return err
		}
		_, err = io.Copy(w, spooled)
		return err
	}
	if cte != "" && cte != "7bit" && cte != "8bit" && cte != "binary" {
		// Bytes that say they are encoded are not the content: to
		// encode them again would change what the part says.
		return &convertError{"a part encoded " + clip(cte) + " holds 8-bit bytes"}
	}
	text := strings.HasPrefix(mt, "text/")
	// Quoted-printable keeps text readable; it costs three bytes for
	// each 8-bit byte where base64 costs 4/3 for every byte: past a
	// third of 8-bit bytes it would be a quarter longer than base64.
	useQP := text && st.eightBit*3 <= n
	enc := "base64"
	if useQP {
		enc = "quoted-printable"
	}
	var extra []string
	if top && !h.Has("Mime-Version") {
		extra = append(extra, "MIME-Version: 1.0")
	}
	if !h.Has("Content-Type") {
		// The default, us-ascii text, would misread the bytes.
		charset := "unknown-8bit"
		if st.validUTF8() {
			charset = "utf-8"
		}
		extra = append(extra, "Content-Type: text/plain; charset="+charset)
	}
	w, err := emit(fieldsChanged(h, true, extra, "Content-Transfer-Encoding: "+enc))
	if err != nil {
		return err
	}
	if useQP {
		qw := quotedprintable.NewWriter(w)
		if _, err := io.Copy(qw, spooled); err != nil {
			return err
		}
		return qw.Close()
	}
	lw := &lineWrap{w: w}
	bw := base64.NewEncoder(base64.StdEncoding, lw)
	if _, err := io.Copy(&crlfWriter{w: bw}, spooled); err != nil {
		return err
	}
	// The last line needs no CRLF of its own: in a multipart the
	// boundary's CRLF ends it, and wireWriter ends a message's.
	return bw.Close()
}

// fieldsChanged is h with its Content-Transfer-Encoding fields replaced
// by cte when replace is set (and cte is not ""), and the fields in extra
// added, at the bottom: trace fields stay on top. Other fields keep their
// bytes and order.
func fieldsChanged(h textproto.Header, replace bool, extra []string, cte string) textproto.Header {
	if (!replace || cte == "") && len(extra) == 0 {
		return h
	}
	var raws [][]byte
	for f := h.Fields(); f.Next(); {
		if replace && cte != "" && f.Key() == "Content-Transfer-Encoding" {
			continue
		}
		raw, err := f.Raw()
		if err != nil {
			continue
		}
		raws = append(raws, raw)
	}
	for _, e := range extra {
		raws = append(raws, []byte(e+"\r\n"))
	}
	if replace && cte != "" {
		raws = append(raws, []byte(cte+"\r\n"))
	}
	// AddRaw puts a field on top: add them bottom first.
	var out textproto.Header
	for i := len(raws) - 1; i >= 0; i-- {
		out.AddRaw(raws[i])
	}
	return out
}

// bodyStats counts a body's 8-bit bytes and follows whether it is UTF-8,
// across writes that may split a character.
type bodyStats struct {
	eightBit int64
	carry    []byte
	badUTF8  bool
}

func (s *bodyStats) Write(b []byte) (int, error) {
	for _, c := range b {
		if c >= 0x80 {
			s.eightBit++
		}
	}
	if !s.badUTF8 && s.eightBit > 0 {
		buf := append(s.carry, b...)
		// Keep an incomplete character at the end for the next write.
		cut := len(buf)
		for i := len(buf) - 1; i >= 0 && i >= len(buf)-utf8.UTFMax; i-- {
			if utf8.RuneStart(buf[i]) {
				if !utf8.FullRune(buf[i:]) {
					cut = i
				}
				break
			}
		}
		if !utf8.Valid(buf[:cut]) {
			s.badUTF8 = true
		}
		s.carry = append(s.carry[:0], buf[cut:]...)
	} else if s.eightBit == 0 {
		s.carry = s.carry[:0]
	}
	return len(b), nil
}

func (s *bodyStats) validUTF8() bool { return !s.badUTF8 && len(s.carry) == 0 }

// crlfWriter makes line ends CRLF (from LF, as the queue holds them, or
// CRLF) before base64 encoding, which must encode the canonical form.
type crlfWriter struct {
	w  io.Writer
	cr bool
}

func (c *crlfWriter) Write(b []byte) (int, error) {
	out := make([]byte, 0, len(b)+len(b)/32+1)
	for _, x := range b {
		if x == '\n' && !c.cr {
			out = append(out, '\r')
		}
		out = append(out, x)
		c.cr = x == '\r'
	}
	if _, err := c.w.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}

// lineWrap breaks base64 text into lines of 76 characters (RFC 2045).
type lineWrap struct {
	w   io.Writer
	col int
}

func (l *lineWrap) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		k := min(76-l.col, len(b))
		if _, err := l.w.Write(b[:k]); err != nil {
			return 0, err
		}
		b, l.col = b[k:], l.col+k
		if l.col == 76 {
			if _, err := io.WriteString(l.w, "\r\n"); err != nil {
				return 0, err
			}
			l.col = 0
		}
	}
	return n, nil
}

func asciiBytes(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// clip bounds text from the message that goes into a bounce.
func clip(s string) string {
	if len(s) > 60 {
		s = s[:60] + "..."
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// sevenBitMessage returns m made 7-bit (made once, then kept on m) and
// measured and signed as sent, or nil with the outcome for every
// recipient when it cannot be: permanent (5.6.3) for what cannot be
// converted, temporary for trouble of our own (a full disk, a key). A
// copy made without SMTPUTF8 (header8bitOK false) refused 8-bit headers,
// so it serves a host that offers SMTPUTF8 too; one made with it is made
// again for a host that does not.
func (c *Client) sevenBitMessage(m *message, header8bitOK bool) (*message, outcome.Status, string) {
	if m.seven != nil && (!m.header8bit || header8bitOK) {
		return m.seven, outcome.OK, ""
	}
	if m.sevenErr != nil && !header8bitOK {
		return nil, statusOf(m.sevenErr), m.sevenErr.Error()
	}
	seven, err := c.makeSevenBit(m, header8bitOK)
	if err != nil {
		if !header8bitOK {
			m.sevenErr = err
		}
		return nil, statusOf(err), err.Error()
	}
	if m.seven != nil {
		m.seven.close()
	}
	m.seven = seven
	return seven, outcome.OK, ""
}

// sevenBitError is why a message could not be made 7-bit, as a status
// text.
type sevenBitError struct {
	perm bool
	text string
}

func (e *sevenBitError) Error() string { return e.text }

func statusOf(err error) outcome.Status {
	var se *sevenBitError
	if errors.As(err, &se) && se.perm {
		return outcome.Perm
	}
	return outcome.Temp
}

func (c *Client) makeSevenBit(m *message, header8bitOK bool) (*message, error) {
	in, err := m.open()
	if err != nil {
		return nil, &sevenBitError{text: "4.3.0 cannot read the message: " + err.Error()}
	}
	defer in.Close()
	f, err := tempFile()
	if err != nil {
		return nil, &sevenBitError{text: "4.3.0 cannot make a 7-bit copy of the message: " + err.Error()}
	}
	var ce *convertError
	switch err := sevenBit(f, in, header8bitOK); {
	case errors.As(err, &ce):
		f.Close()
		return nil, &sevenBitError{perm: true, text: "5.6.3 " + ce.Error()}
	case err != nil:
		f.Close()
		return nil, &sevenBitError{text: "4.3.0 cannot make a 7-bit copy of the message: " + err.Error()}
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		f.Close()
		return nil, &sevenBitError{text: "4.3.0 cannot make a 7-bit copy of the message: " + err.Error()}
	}
	// Measured and signed again: DKIM signs what is sent, the 7-bit
	// bytes, not the message as queued.
	seven, err := c.measure(func() (io.ReadCloser, error) {
		return io.NopCloser(io.NewSectionReader(f, 0, size)), nil
	})
	if err != nil {
		f.Close()
		var de *dkim.Error
		if errors.As(err, &de) {
			return nil, &sevenBitError{perm: de.Perm, text: de.Msg}
		}
		return nil, &sevenBitError{text: "4.3.0 cannot read the 7-bit copy: " + err.Error()}
	}
	seven.sevenFile = f
	return seven, nil
}
