package addr

import "strings"

// isAtext reports RFC 5322 atext, with bytes over 127 taken as text (a
// UTF-8 local part).
func isAtext(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c >= 0x80:
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// DotAtom reports whether a local part can be written without quotes.
func DotAtom(local string) bool {
	if local == "" || local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, "..") {
		return false
	}
	for i := 0; i < len(local); i++ {
		if c := local[i]; c != '.' && !isAtext(c) {
			return false
		}
	}
	return true
}

// quotedString reports whether s is one whole RFC 5321 quoted-string.
func quotedString(s string) bool {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return false
	}
	for i := 1; i < len(s)-1; i++ {
		switch s[i] {
		case '\\':
			i++
			if i >= len(s)-1 {
				return false
			}
		case '"':
			return false
		}
	}
	return true
}

// QuoteLocal writes a local part as RFC 5321 wants it: as it is when it
// is a dot-atom, else as a quoted string with '"' and '\' escaped.
func QuoteLocal(local string) string {
	if DotAtom(local) {
		return local
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(local); i++ {
		if c := local[i]; c == '"' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(local[i])
	}
	b.WriteByte('"')
	return b.String()
}

// ForSMTP is an envelope address as it may stand between the angle
// brackets of MAIL FROM or RCPT TO: a local part that is neither a
// dot-atom nor already a quoted string is quoted, so that no address
// can end the path early and smuggle parameters ("x> NOTIFY=NEVER").
func ForSMTP(a string) string {
	if a == "" {
		return a
	}
	at := strings.LastIndexByte(a, '@')
	local, domain := a, ""
	if at >= 0 {
		local, domain = a[:at], a[at:]
	}
	if quotedString(local) {
		return a
	}
	return QuoteLocal(local) + domain
}
