// Package relay decides whether omail-smtpd may take a recipient: the
// address as the client wrote it is first reduced to one normal form
// (Parse), and the decision is made on that form only, so that no
// spelling of an address reaches a different answer than another.
package relay

import (
	"errors"
	"strings"
	"unicode/utf8"

	"omail/lib/addr"
	"omail/lib/control"
)

// Addr is an envelope address in normal form.
type Addr struct {
	Local string // the local part, quotes and escapes resolved
	// Domain is lower case, one trailing dot removed; "" when absent. An
	// internationalised domain stays as the client wrote it, U-labels or
	// A-labels, mapped by IDNA (idn.go); compare with DomainKey.
	Domain string
	Quoted bool // the local part was written as a quoted string
	Routed bool // a source route (@a,@b:) preceded it and was dropped
}

// String is the address as it goes into the envelope: local@domain, or
// the local part alone when there is no domain, "" for the null path. A
// local part that is not a dot-atom keeps its quotes ("john smith"@x),
// so that it cannot change meaning on the next hop.
func (a Addr) String() string {
	if a.Null() {
		return ""
	}
	if a.Domain == "" {
		return addr.QuoteLocal(a.Local)
	}
	return addr.QuoteLocal(a.Local) + "@" + a.Domain
}

// Null reports the null reverse path <>.
func (a Addr) Null() bool { return a.Local == "" && a.Domain == "" }

// MaxPath is the longest path we take, RFC 5321's 256 octets.
const MaxPath = 256

// ErrSyntax is an address we cannot read.
var ErrSyntax = errors.New("address syntax error")

// SplitPath takes the argument of MAIL FROM: or RCPT TO: and returns the
// path (what is between the angle brackets) and the ESMTP parameters
// after it. A path without brackets is taken up to the first space, as
// qmail does, for the odd old client.
func SplitPath(arg string) (path, params string, err error) {
	arg = strings.TrimLeft(arg, " ")
	if !strings.HasPrefix(arg, "<") {
		path, params, _ = strings.Cut(arg, " ")
		if path == "" {
			return "", "", ErrSyntax
		}
		return path, strings.TrimSpace(params), nil
	}
	inQuote := false
	for i := 1; i < len(arg); i++ {
		switch c := arg[i]; {
		case c == '\\' && inQuote:
			i++
		case c == '"':
			inQuote = !inQuote
		case c == '>' && !inQuote:
			rest := arg[i+1:]
			if rest != "" && rest[0] != ' ' {
				return "", "", ErrSyntax
			}
			return arg[1:i], strings.TrimSpace(rest), nil
		}
	}
	return "", "", ErrSyntax
}

// Parse reduces a path (without its angle brackets) to normal form:
// the source route is dropped (RFC 5321 says to ignore it), a quoted
// local part is unquoted, the domain is lower-cased and loses one
// trailing dot. It refuses control characters, bytes that are not UTF-8,
// unquoted white space and paths over MaxPath. UTF-8 is allowed in the
// local part and the domain (RFC 6531): whether the transaction allows
// it is the caller's business (Addr.UTF8).
func Parse(path string) (Addr, error) {
	var a Addr
	if len(path) > MaxPath {
		return a, ErrSyntax
	}
	if path == "" {
		return a, nil
	}
	for i := 0; i < len(path); i++ {
		if path[i] < 0x20 || path[i] == 0x7f {
			return a, ErrSyntax
		}
	}
	if !utf8.ValidString(path) {
		return a, ErrSyntax
	}
	if path[0] == '@' {
		rest, ok := skipRoute(path)
		if !ok {
			return a, ErrSyntax
		}
		// What follows a route is a mailbox, which cannot start with
		// "@" (another route, or an empty local part): refused as
		// "@@x" is, so that the path without its route reads the same.
		if rest[0] == '@' {
			return a, ErrSyntax
		}
		path, a.Routed = rest, true
	}
	local, domain, quoted, ok := splitMailbox(path)
	if !ok {
		return a, ErrSyntax
	}
	a.Local, a.Quoted = local, quoted
	if domain != "" && !addr.ASCII(domain) {
		u, ok := unicodeDomain(domain)
		if !ok || domain[0] == '[' {
			return a, ErrSyntax
		}
		a.Domain = u
	} else if domain != "" {
		a.Domain = control.NormalizeDomain(domain)
		if !validDomain(a.Domain) {
			return a, ErrSyntax
		}
	}
	if a.Local == "" {
		return a, ErrSyntax
	}
	return a, nil
}

// DropRoute returns path without a source route ("@dom,@dom:") in
// front, and path as it is when it has none or one Parse would refuse.
// The rest is not checked: that is Parse's work.
func DropRoute(path string) string {
	if strings.HasPrefix(path, "@") {
		if rest, ok := skipRoute(path); ok {
			return rest
		}
	}
	return path
}

// skipRoute removes "@dom,@dom:" from the front of a path.
func skipRoute(p string) (string, bool) {
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '[':
			j := strings.IndexByte(p[i:], ']')
			if j < 0 {
				return "", false
			}
			i += j
		case ':':
			return p[i+1:], i+1 < len(p)
		case '"', ' ':
			return "", false
		}
	}
	return "", false
}

// splitMailbox splits local@domain at the last @ outside a quoted
// string and resolves the quoting of the local part.
func splitMailbox(p string) (local, domain string, quoted, ok bool) {
	var b strings.Builder
	i := 0
	if strings.HasPrefix(p, "\"") {
		quoted = true
		for i = 1; i < len(p); i++ {
			c := p[i]
			if c == '\\' && i+1 < len(p) {
				i++
				b.WriteByte(p[i])
				continue
			}
			if c == '"' {
				break
			}
			b.WriteByte(c)
		}
		if i >= len(p) {
			return "", "", false, false
		}
		i++ // the closing quote
		rest := p[i:]
		if rest == "" {
			return b.String(), "", true, true
		}
		if rest[0] != '@' {
			return "", "", false, false
		}
		return b.String(), rest[1:], true, rest[1:] != ""
	}
	at := strings.LastIndexByte(p, '@')
	if at < 0 {
		local = p
	} else {
		local, domain = p[:at], p[at+1:]
		if domain == "" {
			return "", "", false, false
		}
	}
	for j := 0; j < len(local); j++ {
		if c := local[j]; c == ' ' || c == '"' || c == '\\' || c == '<' || c == '>' || c == '(' || c == ')' || c == ',' || c == ';' {
			return "", "", false, false
		}
	}
	return local, domain, false, true
}

// validDomain accepts an ASCII host name (letters, digits, '-', '_', '.',
// no empty label; an IDN is checked as A-labels, idn.go) or an address
// literal in brackets.
func validDomain(d string) bool {
	if d == "" || d == "." {
		return false
	}
	if d[0] == '[' {
		if len(d) < 3 || d[len(d)-1] != ']' {
			return false
		}
		for i := 1; i < len(d)-1; i++ {
			c := d[i]
			if !(isAlnum(c) || c == '.' || c == ':' || c == '-') {
				return false
			}
		}
		return true
	}
	if d[0] == '.' || d[len(d)-1] == '.' || strings.Contains(d, "..") {
		return false
	}
	for i := 0; i < len(d); i++ {
		c := d[i]
		if !(isAlnum(c) || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// Trick names the way this address would make a host that accepts it
// relay somewhere else, or returns "": a percent hack (user%other@us),
// a bang path (other!user@us), a quoted local part holding an @ or
// either of those ("user@other"@us), any other local part that is not a
// dot-atom, quoted or not ("a b"@us, .user@us, "a..b"@us: String
// writes it quoted, which the next hop may read differently), an
// unbracketed IP address as the domain (user@1.2.3.4), a domain missing.
// It looks at the normal form only, so every spelling of an address
// gets the same answer.
func (a Addr) Trick() string {
	switch {
	case strings.ContainsRune(a.Local, '@'):
		return "@ in the local part"
	case strings.ContainsRune(a.Local, '%'):
		return "percent hack"
	case strings.ContainsRune(a.Local, '!'):
		return "bang path"
	case a.Local != "" && !dotAtom(a.Local):
		return "local part needs quotes"
	case a.Domain == "":
		return "no domain"
	case BareIP(a.Domain):
		return "IP address without brackets"
	}
	return ""
}

// dotAtom reports whether s could have been written without quotes
// (RFC 5322 dot-atom).
func dotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && !strings.ContainsRune(".!#$%&'*+-/=?^_`{|}~", rune(c)) && c < 0x80 {
			return false
		}
	}
	return true
}

// BareIP reports a domain whose last label is all digits: an IP address
// written without brackets, which is no host name (RFC 5321 wants
// address literals in brackets) and which some MTAs would relay to.
func BareIP(d string) bool {
	last := d[strings.LastIndexByte(d, '.')+1:]
	if last == "" {
		return false
	}
	for i := 0; i < len(last); i++ {
		if last[i] < '0' || last[i] > '9' {
			return false
		}
	}
	return true
}
