package addr

// ASCII reports whether s has no byte over 0x7f: an address (or header
// text) that needs no SMTPUTF8 (RFC 6531) to be sent as it is.
func ASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
