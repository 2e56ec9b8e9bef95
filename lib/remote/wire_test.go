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

// RFC 5321 4.5.3.1.6: a line is at most 1000 octets with its CRLF, the
// stuffing dot included. A longer one is broken after 998 octets with
// CRLF SPACE, at the same places whether the writer stuffs (sending) or
// not (measuring and signing), and the size counts what is inserted.
func TestWireWriterLongLines(t *testing.T) {
	a := func(n int) string { return strings.Repeat("a", n) }
	for _, c := range []struct{ in, out string }{
		{a(998) + "\n", a(998) + "\r\n"},
		{a(999) + "\n", a(998) + "\r\n a\r\n"},
		{a(998) + "\n" + a(998), a(998) + "\r\n" + a(998) + "\r\n"},
		{a(3000), a(998) + "\r\n " + a(997) + "\r\n " + a(997) + "\r\n " + a(8) + "\r\n"},
		{"." + a(996) + "\n", ".." + a(996) + "\r\n"},
		{"." + a(997) + "\n", ".." + a(996) + "\r\n a\r\n"},
		{a(998) + ".b\n", a(998) + "\r\n .b\r\n"},
		{a(1996) + "\r\n", a(998) + "\r\n " + a(997) + "\r\n a\r\n"},
	} {
		got, _ := wire(c.in, true)
		if got != c.out+".\r\n" {
			t.Errorf("%.20q...: got %q", c.in, got)
		}
		plain, ww := wire(c.in, false)
		unstuffed := strings.ReplaceAll("\n"+c.out, "\n..", "\n.")[1:]
		if plain != unstuffed || ww.n != int64(len(plain)) {
			t.Errorf("%.20q... unstuffed: got %q (n=%d)", c.in, plain, ww.n)
		}
	}
	// The example of the review: a 3000-octet line goes out broken.
	msg, _ := wire("Subject: x\n\n"+a(3000)+"\n", true)
	for _, l := range strings.SplitAfter(msg, "\r\n") {
		if len(l) > 1000 {
			t.Errorf("a line of %d octets", len(l))
		}
	}
}

func FuzzWireWriter(f *testing.F) {
	f.Add([]byte("a\nb\r\n.c\r\rd"))
	f.Add([]byte(".\r\n.\n"))
	f.Add([]byte(strings.Repeat("x", 2100) + "\n." + strings.Repeat("y", 1000) + "\n" + strings.Repeat("z", 998) + "\n w\n"))
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
		// Un-stuffing, and joining the lines broken at 998 octets,
		// gives back the message, line ends aside.
		var lines []string
		full := false // the last wire line filled its 998 octets
		for _, l := range strings.Split(strings.TrimSuffix(body, "\r\n"), "\r\n") {
			if len(l) > maxLine {
				t.Fatalf("a line of %d octets in %q", len(l), out)
			}
			if full && strings.HasPrefix(l, " ") {
				lines[len(lines)-1] += l[1:]
			} else {
				lines = append(lines, strings.TrimPrefix(l, "."))
			}
			full = len(l) == maxLine
		}
		norm := strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(string(msg))
		if ambiguous(norm) {
			return // a line that fills its 998 octets, then one starting with a space
		}
		if body != "" && strings.Join(lines, "\n") != strings.TrimSuffix(norm, "\n") {
			t.Fatalf("content changed: %q -> %q", msg, out)
		}
	})
}

// ambiguous reports whether a message has a line that fills a wire line
// (998 octets, a stuffing dot included), followed by a line that starts
// with a space: on the wire that reads like a broken line.
func ambiguous(norm string) bool {
	ls := strings.Split(norm, "\n")
	for i := 0; i+1 < len(ls); i++ {
		n := len(ls[i])
		if strings.HasPrefix(ls[i], ".") {
			n++
		}
		if n >= maxLine && strings.HasPrefix(ls[i+1], " ") {
			return true
		}
	}
	return false
}
