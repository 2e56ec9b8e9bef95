package remote

import (
	"context"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
)

func TestHeaderScan(t *testing.T) {
	for msg, want := range map[string]bool{
		"Subject: x\n\nGr\xc3\xbc\xc3\x9fe\n":            false, // 8-bit in the body only
		"Subject: Gr\xc3\xbc\xc3\x9fe\n\nx\n":            true,
		"Subject: x\n folded Gr\xc3\xbc\xc3\x9fe\n\nx\n": true,
		"Subject: x\r\n\r\nGr\xc3\xbc\xc3\x9fe\r\n":      false,
		"Subject: x\r\nTo: J\xc3\xb6rg <a@b>\r\n\r\n":    true,
		"no header at all, 8-bit \xe9 and no newline":    true, // all header: no empty line
		"\nbody \xe9\n": false, // empty header
	} {
		// Byte by byte too: a line end split across writes.
		for _, split := range []bool{false, true} {
			var h headerScan
			if split {
				for i := 0; i < len(msg); i++ {
					h.Write([]byte{msg[i]})
				}
			} else {
				h.Write([]byte(msg))
			}
			if h.eightBit != want {
				t.Errorf("%q (split %v): header 8-bit %v, want %v", msg, split, h.eightBit, want)
			}
		}
	}
}

// TestHeaderUTF8: a message with UTF-8 header fields and ASCII addresses
// is sent with SMTPUTF8 to a next hop that offers it, and as it is (with
// BODY=8BITMIME) to one that offers only 8BITMIME.
func TestHeaderUTF8(t *testing.T) {
	body := "Subject: Gr\xc3\xbc\xc3\x9fe\n\nHallo\n"
	msg := writeMsg(t, body)
	with := startServer(t, func(s *smtp.Server) { s.EnableSMTPUTF8 = true })
	res := (&Client{}).Deliver(context.Background(), relay(with.port), msg, "s@x", []string{"a@x"})
	checkStatuses(t, res, "a@x=ok")
	g := with.got()
	if len(g) != 1 || !g[0].MailOpts.UTF8 || g[0].MailOpts.Body != smtp.Body8BitMIME {
		t.Fatalf("want SMTPUTF8 and BODY=8BITMIME in MAIL: %+v", g)
	}
	if string(g[0].Data) != strings.ReplaceAll(body, "\n", "\r\n") {
		t.Errorf("data %q", g[0].Data)
	}

	without := startServer(t, func(*smtp.Server) {})
	res = (&Client{}).Deliver(context.Background(), relay(without.port), msg, "s@x", []string{"a@x"})
	checkStatuses(t, res, "a@x=ok")
	if g := without.got(); len(g) != 1 || g[0].MailOpts.UTF8 || string(g[0].Data) != strings.ReplaceAll(body, "\n", "\r\n") {
		t.Errorf("without SMTPUTF8: %+v", g)
	}
}
