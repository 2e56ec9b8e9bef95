// Package addr parses the addresses people and programs write: address
// lists in To:/Cc:/Bcc: headers, read leniently as qmail-inject does, and
// the envelope addresses of SMTP and sendmail's command line.
package addr

import "strings"

// ParseList returns the addr-specs in an RFC 5322 address list, in order.
// It is lenient where mail in the wild is sloppy: display names with
// unquoted specials, missing domains, group syntax, comments anywhere,
// source routes inside angle brackets. It never fails; text it cannot
// make sense of yields what it can, and an empty string yields nothing.
func ParseList(s string) []string {
	var out []string
	var item strings.Builder // the current item, comments removed
	var angle strings.Builder
	inAngle, sawAngle := false, false
	var angleAddr string
	flush := func() {
		var a string
		if sawAngle {
			a = angleAddr
		} else {
			a = squeeze(item.String())
		}
		if a != "" {
			out = append(out, a)
		}
		item.Reset()
		angle.Reset()
		inAngle, sawAngle, angleAddr = false, false, ""
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			// Quoted string: copy it whole, honouring backslash escapes.
			j := i + 1
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				j++
			}
			end := j + 1
			if end > len(s) {
				end = len(s)
			}
			q := s[i:end]
			if inAngle {
				angle.WriteString(q)
			} else {
				item.WriteString(q)
			}
			i = end - 1
		case c == '(':
			// Comment, possibly nested: dropped.
			depth := 0
			for ; i < len(s); i++ {
				if s[i] == '\\' {
					i++
					continue
				}
				if s[i] == '(' {
					depth++
				} else if s[i] == ')' {
					depth--
					if depth == 0 {
						break
					}
				}
			}
			item.WriteByte(' ')
		case c == '<' && !inAngle:
			inAngle = true
			angle.Reset()
		case c == '>' && inAngle:
			inAngle, sawAngle = false, true
			angleAddr = stripRoute(squeeze(angle.String()))
		case inAngle:
			angle.WriteByte(c)
		case c == ',' || c == ';':
			flush()
		case c == ':' && !sawAngle:
			// A group's display name ends here ("friends: a@b, c@d;"):
			// what came before is a name, not an address.
			item.Reset()
		default:
			item.WriteByte(c)
		}
	}
	if inAngle {
		// An unclosed bracket: take what followed it.
		sawAngle = true
		angleAddr = stripRoute(squeeze(angle.String()))
	}
	flush()
	return out
}

// squeeze removes white space outside quoted strings, so that
// "john . doe @ example . org" reads as people mean it.
func squeeze(s string) string {
	var b strings.Builder
	inQuote := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && inQuote && i+1 < len(s):
			b.WriteByte(c)
			b.WriteByte(s[i+1])
			i++
		case c == '"':
			inQuote = !inQuote
			b.WriteByte(c)
		case !inQuote && (c == ' ' || c == '\t' || c == '\r' || c == '\n'):
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// stripRoute removes an obsolete source route: "@a,@b:user@c" is user@c.
// A route holds domains only: a colon after a quote belongs to the
// quoted string, and cutting there would leave half of it (and its white
// space) outside the quotes.
func stripRoute(s string) string {
	if strings.HasPrefix(s, "@") {
		if i := strings.IndexByte(s, ':'); i >= 0 && !strings.Contains(s[:i], `"`) {
			return s[i+1:]
		}
	}
	return s
}

// Split divides an address at its last '@' into local part and domain;
// an address without '@' has an empty domain.
func Split(a string) (local, domain string) {
	i := strings.LastIndexByte(a, '@')
	if i < 0 {
		return a, ""
	}
	return a[:i], a[i+1:]
}

// Qualify completes an address as qmail-inject does: an address without
// a domain gets defaultHost.
func Qualify(a, defaultHost string) string {
	if a == "" {
		return a
	}
	if _, d := Split(a); d == "" {
		return strings.TrimSuffix(a, "@") + "@" + defaultHost
	}
	return a
}
