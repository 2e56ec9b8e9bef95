package dkim

import (
	"bytes"
	"net/mail"
	"strings"
)

// field is one header field: its name as written, and its whole text
// with continuation lines, as it is on the wire.
type field struct {
	name string
	raw  []byte
}

// fields splits a header (CRLF lines, without the empty line that ends
// it) into fields. With partial set the header was cut short, so its
// last field may be incomplete and is dropped. A line that is neither a
// field nor a continuation (no colon) is kept as a field with no name,
// which nothing looks for.
func fields(head []byte, partial bool) []field {
	var out []field
	for len(head) > 0 {
		line := head
		if i := bytes.Index(head, []byte("\r\n")); i >= 0 {
			line = head[:i+2]
		} else if partial {
			break
		}
		head = head[len(line):]
		if (line[0] == ' ' || line[0] == '\t') && len(out) > 0 {
			out[len(out)-1].raw = append(out[len(out)-1].raw, line...)
			continue
		}
		name, _, ok := bytes.Cut(line, []byte(":"))
		f := field{raw: append([]byte(nil), line...)}
		if ok {
			f.name = strings.TrimRight(string(name), " \t")
		}
		out = append(out, f)
	}
	if partial && len(out) > 0 {
		out = out[:len(out)-1]
	}
	return out
}

// value is the field's body, unfolded.
func (f field) value() string {
	_, v, _ := bytes.Cut(f.raw, []byte(":"))
	v = bytes.ReplaceAll(v, []byte("\r\n"), nil)
	return strings.TrimSpace(string(v))
}

// fromDomain returns the domain of the author (RFC 5322 From field,
// the first one, its first mailbox): the identity DMARC checks a
// signature's d= against. found is false without a From field; domain
// is empty when the field holds no address.
func fromDomain(fs []field) (domain string, found bool) {
	for _, f := range fs {
		if !strings.EqualFold(f.name, "From") {
			continue
		}
		v := f.value()
		if list, err := mail.ParseAddressList(v); err == nil && len(list) > 0 {
			return domainOf(list[0].Address), true
		}
		// Not RFC 5322 (raw 8-bit, odd quoting): still the address's
		// domain, the way a reader would see it, rather than no
		// signature for mail whose author has a key.
		if i := strings.LastIndexByte(v, '<'); i >= 0 {
			v = v[i+1:]
		}
		return domainOf(v), true
	}
	return "", false
}

// domainOf is what follows the last '@' up to the first character that
// cannot be in a domain.
func domainOf(a string) string {
	at := strings.LastIndexByte(a, '@')
	if at < 0 {
		return ""
	}
	d := a[at+1:]
	for i := 0; i < len(d); i++ {
		c := d[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c >= 0x80) {
			d = d[:i]
			break
		}
	}
	return strings.ToLower(strings.TrimSuffix(d, "."))
}

// signed are the header fields a signature covers (RFC 6376 5.4.1):
// what a reader sees and trusts, the MIME structure that decides how the
// body is shown, and the list fields large mailbox providers want signed.
var signed = []string{
	"From", "Sender", "Reply-To", "To", "Cc", "Subject", "Date",
	"Message-ID", "In-Reply-To", "References",
	"MIME-Version", "Content-Type", "Content-Transfer-Encoding",
	"Content-Disposition", "Content-ID", "Content-Description",
	"List-Id", "List-Unsubscribe", "List-Unsubscribe-Post",
}

// headerKeys is the h= list for a header: each signed field as many
// times as it occurs, plus once more, so that the signature also covers
// the absence of another instance: nobody can add a second From or
// Subject after signing without breaking it. From is always listed
// (RFC 6376 requires it). Fields a message lacks are not listed, so a
// mailing list may still add its List-Id or a Reply-To.
func headerKeys(fs []field) []string {
	count := map[string]int{}
	for _, f := range fs {
		count[strings.ToLower(f.name)]++
	}
	var keys []string
	for _, name := range signed {
		n := count[strings.ToLower(name)]
		if n == 0 && name != "From" {
			continue
		}
		for i := 0; i <= n; i++ {
			keys = append(keys, name)
		}
	}
	return keys
}
