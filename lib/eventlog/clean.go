package eventlog

// Clean makes text a peer supplied (an SMTP client, an MTA speaking the
// milter protocol) safe to put in a log line or a header field:
// printable ASCII only, with parentheses, semicolons, quotes and
// backslashes replaced too (they would change a Received: line's
// structure), and at most 256 bytes. Every other byte becomes '?'.
func Clean(s string) string {
	if len(s) > 256 {
		s = s[:256]
	}
	b := []byte(s)
	for i, c := range b {
		if c < 0x21 || c > 0x7e || c == '(' || c == ')' || c == ';' || c == '"' || c == '\\' {
			b[i] = '?'
		}
	}
	return string(b)
}
