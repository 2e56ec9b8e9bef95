package eventlog

import (
	"strings"
	"testing"
)

func TestClean(t *testing.T) {
	for in, want := range map[string]string{
		"client.example":         "client.example",
		"a b\r\nc":               "a?b??c",
		`x(y);"z"\`:              "x?y???z??",
		"h\xc3\xa9llo":           "h??llo",
		strings.Repeat("a", 300): strings.Repeat("a", 256),
	} {
		if got := Clean(in); got != want {
			t.Errorf("Clean(%q) = %q, want %q", in, got, want)
		}
	}
}
