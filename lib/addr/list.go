// Package addr parses the addresses people and programs write: address
// lists in To:/Cc:/Bcc: headers, read leniently as qmail-inject does, and
// the envelope addresses of SMTP and sendmail's command line.
package addr

import (
	"fmt"
	"strings"
)

// ParseList returns the addr-specs in an RFC 5322 address list, in order.
// It is lenient where mail in the wild is sloppy: display names with
// unquoted specials, missing domains, group syntax, comments anywhere,
// source routes inside angle brackets. An empty string yields nothing.
//
// Quoted strings and domain literals ("[IPv6:2001:db8::1]") are taken
// whole: their commas and colons separate nothing. A ':' ends a group's
// display name only where one can end, before any '@' of the item. The
// one error is an item that would make an address with more than one
// '@' outside quotes and literals ("a@x.example b@y.example", a missing
// comma): two addresses are never glued into one.
func ParseList(s string) ([]string, error) {
	var out []string
	var item strings.Builder // the current item, comments removed
	var angle strings.Builder
	inAngle, sawAngle := false, false
	var angleAddr string
	start := 0 // where the current item began in s, for the error
	flush := func(end int) error {
		var a string
		if sawAngle {
			a = angleAddr
		} else {
			a = squeeze(item.String())
		}
		if countAt(a) > 1 {
			return fmt.Errorf("%q is not one address: more than one @ (a comma missing?)", strings.TrimSpace(s[start:end]))
		}
		if a != "" {
			out = append(out, a)
		}
		item.Reset()
		angle.Reset()
		inAngle, sawAngle, angleAddr = false, false, ""
		start = end + 1
		return nil
	}
	ats := 0 // '@' in item outside quotes and literals
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' || c == '[' {
			// A quoted string or a domain literal: copied whole,
			// backslash escapes honoured. An unclosed quote runs to the
			// end; an unclosed '[' is an ordinary character.
			if end, closed := spanEnd(s, i); c == '"' || closed {
				if inAngle {
					angle.WriteString(s[i:end])
				} else {
					item.WriteString(s[i:end])
				}
				i = end - 1
				continue
			}
		}
		switch {
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
			if err := flush(i); err != nil {
				return nil, err
			}
			ats = 0
		case c == ':' && !sawAngle && ats == 0:
			// A group's display name ends here ("friends: a@b, c@d;"):
			// what came before is a name, not an address.
			item.Reset()
			start = i + 1
		default:
			if c == '@' {
				ats++
			}
			item.WriteByte(c)
		}
	}
	if inAngle {
		// An unclosed bracket: take what followed it.
		sawAngle = true
		angleAddr = stripRoute(squeeze(angle.String()))
	}
	if err := flush(len(s)); err != nil {
		return nil, err
	}
	return out, nil
}

// spanEnd returns the index just past the quoted string or domain
// literal that starts at s[i] ('"' or '['), honouring backslash escapes,
// and whether it is closed; len(s) when it is not.
func spanEnd(s string, i int) (end int, closed bool) {
	closer := byte('"')
	if s[i] == '[' {
		closer = ']'
	}
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case closer:
			return j + 1, true
		}
	}
	return len(s), false
}

// countAt counts the '@' in an address outside quoted strings and domain
// literals: an addr-spec has one (or none, before it is qualified).
func countAt(a string) int {
	n := 0
	for i := 0; i < len(a); i++ {
		switch a[i] {
		case '"':
			end, _ := spanEnd(a, i)
			i = end - 1
		case '[':
			if end, closed := spanEnd(a, i); closed {
				i = end - 1
			}
		case '@':
			n++
		}
	}
	return n
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// squeeze removes white space outside quoted strings, so that
// "john . doe @ example . org" reads as people mean it; in a domain
// literal too ("[ 192.0.2.1 ]").
func squeeze(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			end, _ := spanEnd(s, i)
			b.WriteString(s[i:end])
			i = end - 1
		case c == '[':
			end, closed := spanEnd(s, i)
			if !closed {
				b.WriteByte(c)
				continue
			}
			for j := i; j < end; j++ {
				switch {
				case s[j] == '\\' && isSpace(s[j+1]):
					j++ // an escaped space: dropped with its backslash
				case s[j] == '\\':
					b.WriteString(s[j : j+2])
					j++
				case !isSpace(s[j]):
					b.WriteByte(s[j])
				}
			}
			i = end - 1
		case isSpace(c):
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// stripRoute removes an obsolete source route: "@a,@b:user@c" is user@c.
// A route holds domains only: a colon after a quote belongs to the
// quoted string, and cutting there would leave half of it (and its white
// space) outside the quotes; a colon in a domain literal ("@[IPv6:::1]")
// ends nothing.
func stripRoute(s string) string {
	if !strings.HasPrefix(s, "@") {
		return s
	}
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			return s
		case '[':
			if end, closed := spanEnd(s, i); closed {
				i = end - 1
			}
		case ':':
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
