package addr

import (
	"strings"
	"testing"
)

func TestASCII(t *testing.T) {
	for s, want := range map[string]bool{"": true, "a@b.example": true, "jörg@b.example": false, "a@b\xfc": false} {
		if ASCII(s) != want {
			t.Errorf("ASCII(%q) = %v", s, !want)
		}
	}
}

// UTF-8 addresses in header lists (RFC 6532), as omail-inject -t reads
// them: the bytes pass through untouched.
func TestParseListUTF8(t *testing.T) {
	got, err := ParseList(`Jörg <jörg@bücher.example>, "Ann Müller" <ann@müller.example>, 用户@例子.广告 (Kommentar: Grüße)`)
	want := "jörg@bücher.example ann@müller.example 用户@例子.广告"
	if err != nil || strings.Join(got, " ") != want {
		t.Errorf("ParseList = %q, %v; want %q", got, err, want)
	}
}
