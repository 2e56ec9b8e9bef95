// Package masquerade rewrites sender domains on the way out, as the
// masquerade control file says: "fromdomain:todomain" lines, ".dom"
// for every domain under dom. A dial-up hub or kiosk whose users write
// from user@kiosk1.local sends as user@example.org.
//
// What is rewritten: the envelope sender (Address) and the addresses in
// the From, Sender, Reply-To, Resent-From and Resent-Sender header
// fields (Copy). Nothing else in the message changes, byte for byte.
package masquerade

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"omail/lib/control"
)

// Map is a loaded masquerade file.
type Map struct {
	m *control.DomainMap
}

// Load reads the masquerade control file (missing: rewrite nothing).
func Load(ctl *control.Dir) (*Map, error) {
	lines, err := ctl.List("masquerade")
	if err != nil {
		return nil, err
	}
	return Parse(lines)
}

// Parse builds a Map from "fromdomain:todomain" lines. A line whose
// domains are not domains (white space, a '#' comment after the value,
// address punctuation) is an error naming it, never a rewrite to
// something that is not a domain: the sender would bounce.
func Parse(lines []string) (*Map, error) {
	m, err := control.ParseDomainMap("masquerade", lines)
	if err != nil {
		return nil, err
	}
	for _, l := range lines {
		from, to, _ := strings.Cut(l, ":")
		from, to = strings.TrimSpace(from), strings.TrimSpace(to)
		for _, d := range []string{strings.TrimPrefix(from, "."), to} {
			if !plainDomain(d) {
				return nil, &control.Error{File: "masquerade", Err: fmt.Errorf("line %q: %q is not a domain%s", l, d, commentHint(d))}
			}
		}
	}
	return &Map{m}, nil
}

// plainDomain reports whether d can be an address's domain ("" too:
// the default line, or an exemption). UTF-8 is let through for
// internationalized domains.
func plainDomain(d string) bool {
	for i := 0; i < len(d); i++ {
		if c := d[i]; c <= ' ' || c == 0x7f || strings.IndexByte("#<>()\\,;:@\"", c) >= 0 {
			return false
		}
	}
	return !strings.HasPrefix(d, ".") && !strings.HasSuffix(d, ".") && !strings.Contains(d, "..")
}

// commentHint explains a '#' in a value: control files have whole-line
// comments only.
func commentHint(v string) string {
	if strings.Contains(v, "#") {
		return " (a comment must be a line of its own)"
	}
	return ""
}

// Empty reports whether the map rewrites nothing, so callers can skip
// the header pass altogether.
func (m *Map) Empty() bool { return m == nil || m.m.Len() == 0 }

// Domain returns the replacement for a domain, and whether there is one.
func (m *Map) Domain(d string) (string, bool) {
	if m.Empty() {
		return "", false
	}
	v, _, ok := m.m.Lookup(d)
	if !ok || v == "" {
		return "", false
	}
	return v, true
}

// Address rewrites the domain of an envelope address. The null sender
// and addresses without a domain stay as they are.
func (m *Map) Address(a string) string {
	at := strings.LastIndexByte(a, '@')
	if at < 0 {
		return a
	}
	if to, ok := m.Domain(a[at+1:]); ok {
		return a[:at+1] + to
	}
	return a
}

// maxField is the longest header field (all its lines) held in memory
// for rewriting; a longer one goes out untouched.
const maxField = 64 << 10

var rewritten = map[string]bool{"from": true, "sender": true, "reply-to": true, "resent-from": true, "resent-sender": true}

// Copy copies a message from src to dst, rewriting the address domains
// of the sender header fields. It streams: only one header field is
// held in memory at a time, and the body is copied as it comes. Line
// endings (LF or CRLF) are kept as they are.
func (m *Map) Copy(dst io.Writer, src io.Reader) (int64, error) {
	cw := &countWriter{w: dst}
	if m.Empty() {
		_, err := io.Copy(cw, src)
		return cw.n, err
	}
	br := bufio.NewReaderSize(src, maxField)
	var field []byte // the header field being gathered
	// flush writes the gathered field, rewritten unless raw.
	flush := func(raw bool) error {
		if len(field) == 0 {
			return nil
		}
		out := field
		if name, _, ok := bytes.Cut(field, []byte(":")); ok && !raw && rewritten[strings.ToLower(string(bytes.TrimRight(name, " \t")))] {
			out = m.rewriteField(field)
		}
		field = field[:0]
		_, err := cw.Write(out)
		return err
	}
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A line longer than maxField: not a header we rewrite.
			// Send what we have and the rest as it is.
			if ferr := flush(len(line) > 0 && (line[0] == ' ' || line[0] == '\t')); ferr != nil {
				return cw.n, ferr
			}
			if _, werr := cw.Write(line); werr != nil {
				return cw.n, werr
			}
			_, err = io.Copy(cw, br)
			return cw.n, err
		}
		if len(line) > 0 {
			cont := line[0] == ' ' || line[0] == '\t'
			blank := len(bytes.TrimRight(line, "\r\n")) == 0 && line[len(line)-1] == '\n'
			switch {
			case cont && len(field) > 0 && len(field)+len(line) <= maxField:
				field = append(field, line...)
				line = nil
			case !cont && !blank && isFieldStart(line):
				if ferr := flush(false); ferr != nil {
					return cw.n, ferr
				}
				field = append(field, line...)
				line = nil
			}
			if line != nil {
				// The blank line, a line that is no header, or an
				// over-long field: the header (as far as we rewrite it)
				// ends here; the rest goes out as it is.
				if ferr := flush(cont); ferr != nil {
					return cw.n, ferr
				}
				if _, werr := cw.Write(line); werr != nil {
					return cw.n, werr
				}
				if err == nil {
					_, err = io.Copy(cw, br)
				}
				if err == io.EOF {
					err = nil
				}
				return cw.n, err
			}
		}
		if err == io.EOF {
			return cw.n, flush(false)
		}
		if err != nil {
			return cw.n, err
		}
	}
}

// isFieldStart reports whether a line begins a header field: a name of
// printable characters, then a colon.
func isFieldStart(line []byte) bool {
	for i, c := range line {
		if c == ':' {
			return i > 0
		}
		if c <= ' ' || c >= 127 {
			// RFC 5322 allows no space in the name; obsolete syntax
			// allows space before the colon.
			if c == ' ' || c == '\t' {
				rest := bytes.TrimLeft(line[i:], " \t")
				return i > 0 && len(rest) > 0 && rest[0] == ':'
			}
			return false
		}
	}
	return false
}

// rewriteField replaces the domain after every '@' that stands outside
// quoted strings and comments, where the map has a replacement. Display
// names, comments and folding stay as they were.
func (m *Map) rewriteField(field []byte) []byte {
	colon := bytes.IndexByte(field, ':')
	out := make([]byte, 0, len(field)+32)
	out = append(out, field[:colon+1]...)
	inQuote, depth := false, 0
	for i := colon + 1; i < len(field); i++ {
		c := field[i]
		switch {
		case c == '\\' && (inQuote || depth > 0) && i+1 < len(field):
			out = append(out, c, field[i+1])
			i++
			continue
		case inQuote:
			if c == '"' {
				inQuote = false
			}
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth > 0:
		case c == '"':
			inQuote = true
		case c == '@':
			j := i + 1
			for j < len(field) && domainChar(field[j]) {
				j++
			}
			out = append(out, '@')
			dom := string(field[i+1 : j])
			if to, ok := m.Domain(dom); ok && dom != "" {
				out = append(out, to...)
			} else {
				out = append(out, dom...)
			}
			i = j - 1
			continue
		}
		out = append(out, c)
	}
	return out
}

func domainChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_'
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}
