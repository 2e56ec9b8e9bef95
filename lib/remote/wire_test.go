package remote

import (
	"bytes"
	"strings"
	"testing"
)

func wire(in string, stuff bool) (string, *wireWriter) {
	var b bytes.Buffer
	ww := newWireWriter(&b, stuff)
	for i := 0; i < len(in); i++ { // byte by byte: state across writes
		ww.Write([]byte{in[i]})
	}
	ww.Finish()
	return b.String(), ww
}

func TestWireWriter(t *testing.T) {
	for _, c := range []struct{ in, out string }{
		{"a\nb\n", "a\r\nb\r\n.\r\n"},
		{"a\r\nb", "a\r\nb\r\n.\r\n"},
		{".\n..x\n", "..\r\n...x\r\n.\r\n"},
		{"bare\rcr\r\r\n", "bare\r\ncr\r\n\r\n.\r\n"},
		{"end\r", "end\r\n.\r\n"},
		{"", ".\r\n"},
		{"x\n.", "x\r\n..\r\n.\r\n"},
	} {
		got, _ := wire(c.in, true)
		if got != c.out {
			t.Errorf("%q: got %q want %q", c.in, got, c.out)
		}
	}
	got, ww := wire(".a\n\xc3\xa9\n", false)
	if got != ".a\r\n\xc3\xa9\r\n" || ww.n != int64(len(got)) || !ww.eightBit {
		t.Errorf("unstuffed: %q n=%d 8bit=%v", got, ww.n, ww.eightBit)
	}
	if _, ww := wire("plain\n", false); ww.eightBit {
		t.Error("7-bit message taken for 8-bit")
	}
}

func FuzzWireWriter(f *testing.F) {
	f.Add([]byte("a\nb\r\n.c\r\rd"))
	f.Add([]byte(".\r\n.\n"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		var b bytes.Buffer
		ww := newWireWriter(&b, true)
		half := len(msg) / 2
		ww.Write(msg[:half])
		ww.Write(msg[half:])
		if err := ww.Finish(); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		if !strings.HasSuffix(out, "\r\n.\r\n") && out != ".\r\n" {
			t.Fatalf("no end marker: %q", out)
		}
		body := strings.TrimSuffix(out, ".\r\n")
		// Every CR is followed by LF, every LF preceded by CR.
		for i := 0; i < len(body); i++ {
			if body[i] == '\r' && (i+1 >= len(body) || body[i+1] != '\n') {
				t.Fatalf("bare CR in %q", out)
			}
			if body[i] == '\n' && (i == 0 || body[i-1] != '\r') {
				t.Fatalf("bare LF in %q", out)
			}
		}
		// The end marker appears only at the end.
		if strings.Contains("\r\n"+body, "\r\n.\r\n") {
			t.Fatalf("early end of data in %q", out)
		}
		// Un-stuffing gives back the message, line ends aside.
		lines := strings.Split(strings.TrimSuffix(body, "\r\n"), "\r\n")
		for i, l := range lines {
			lines[i] = strings.TrimPrefix(l, ".")
		}
		norm := strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(string(msg))
		if body != "" && strings.Join(lines, "\n") != strings.TrimSuffix(norm, "\n") {
			t.Fatalf("content changed: %q -> %q", msg, out)
		}
	})
}
