package remote

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	gomessage "github.com/emersion/go-message"
)

// convert runs sevenBit on a message written with LF line ends, as the
// queue holds it, and checks that what comes out is 7-bit.
func convert(t *testing.T, in string, header8bitOK bool) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := sevenBit(&out, strings.NewReader(in), header8bitOK)
	if err == nil && !header8bitOK {
		for i, c := range out.Bytes() {
			if c >= 0x80 {
				t.Fatalf("8-bit byte at %d of the output:\n%s", i, out.String())
			}
		}
	}
	return out.String(), err
}

// leaves returns every leaf part's Content-Type and decoded body, in
// order, as a MIME reader (go-message) sees them.
func leaves(t *testing.T, msg string) []string {
	t.Helper()
	e, err := gomessage.Read(strings.NewReader(msg))
	if err != nil && !gomessage.IsUnknownCharset(err) {
		t.Fatalf("reading the output: %v\n%s", err, msg)
	}
	var out []string
	var walk func(e *gomessage.Entity)
	walk = func(e *gomessage.Entity) {
		mt, _, _ := e.Header.ContentType()
		if mr := e.MultipartReader(); mr != nil {
			for {
				p, err := mr.NextPart()
				if err == io.EOF {
					return
				}
				if err != nil && !gomessage.IsUnknownCharset(err) {
					t.Fatalf("next part: %v", err)
				}
				walk(p)
			}
		}
		if mt == "message/rfc822" {
			inner, err := gomessage.Read(e.Body)
			if err != nil && !gomessage.IsUnknownCharset(err) {
				t.Fatalf("inner message: %v", err)
			}
			walk(inner)
			return
		}
		b, err := io.ReadAll(e.Body)
		if err != nil {
			t.Fatalf("body of %s: %v", mt, err)
		}
		out = append(out, mt+": "+strings.ReplaceAll(string(b), "\r\n", "\n"))
	}
	walk(e)
	return out
}

func TestSevenBitNotMIME(t *testing.T) {
	for _, c := range []struct{ body, charset string }{
		{"Gr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln\nzweite Zeile = zwei\n", "utf-8"},
		{"caf\xe9 cr\xe8me\n", "unknown-8bit"}, // Latin-1
	} {
		in := "Received: by x\nSubject: hi\n\n" + c.body
		out, err := convert(t, in, false)
		if err != nil {
			t.Fatal(err)
		}
		want := "Received: by x\r\nSubject: hi\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=" + c.charset +
			"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
		if !strings.HasPrefix(out, want) {
			t.Errorf("header:\n%s\nwant\n%s", out, want)
		}
		if got := leaves(t, out); len(got) != 1 || got[0] != "text/plain: "+c.body {
			t.Errorf("decoded %q, want %q", got, c.body)
		}
	}
}

const mixed = `Received: by x
MIME-Version: 1.0
Subject: parts
Content-Type: multipart/mixed; boundary="outer"
Content-Transfer-Encoding: 8bit

This is the preamble.
--outer
Content-Type: text/plain; charset=us-ascii

plain ascii, left = as it is
--outer
Content-Type: multipart/alternative; boundary=inner

--inner
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Viele Gr` + "\xc3\xbc\xc3\x9f" + `e aus K` + "\xc3\xb6" + `ln
--inner
Content-Type: text/html; charset=utf-8

<p>` + "\xc3\xa4\xc3\xb6\xc3\xbc\xc3\xa4\xc3\xb6\xc3\xbc" + `</p>
--inner--
--outer
Content-Type: application/octet-stream
Content-Transfer-Encoding: 8bit

bin` + "\xff\xfe\x80" + `ary
line two
--outer
Content-Type: message/rfc822

Subject: inner
Content-Type: text/plain; charset=utf-8

inner text with one ` + "\xc3\xa9" + ` only
--outer
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: base64

YWxyZWFkeSBlbmNvZGVk
--outer--
epilogue
`

func TestSevenBitMultipart(t *testing.T) {
	out, err := convert(t, mixed, false)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"text/plain: plain ascii, left = as it is",
		"text/plain: Viele Gr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln",
		"text/html: <p>\xc3\xa4\xc3\xb6\xc3\xbc\xc3\xa4\xc3\xb6\xc3\xbc</p>",
		"application/octet-stream: bin\xff\xfe\x80ary\nline two",
		"text/plain: inner text with one \xc3\xa9 only", // the LF before a boundary is the boundary's
		"text/plain: already encoded",
	}
	got := leaves(t, out)
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("decoded parts\n%q\nwant\n%q\n%s", got, want, out)
	}
	for _, s := range []string{
		"Subject: parts\r\nContent-Type: multipart/mixed; boundary=\"outer\"\r\nContent-Transfer-Encoding: 7bit\r\n\r\n--outer\r\n",
		"Content-Type: text/plain; charset=us-ascii\r\n\r\nplain ascii, left = as it is\r\n--outer\r\n", // untouched
		"--inner\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nViele Gr=C3=BC=C3=9Fe aus K=C3=B6ln\r\n--inner\r\n",
		"Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n", // mostly 8-bit: base64
		"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n",
		"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n",
		"YWxyZWFkeSBlbmNvZGVk\r\n--outer--\r\n",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}
	if strings.Contains(out, "preamble") || strings.Contains(out, "epilogue") {
		t.Errorf("preamble or epilogue kept:\n%s", out)
	}
}

func TestSevenBitRefused(t *testing.T) {
	deep := "Content-Type: message/rfc822\n\n"
	for range 40 {
		deep += "Content-Type: message/rfc822\n\n"
	}
	deep += "\n\xc3\xa9\n"
	for name, in := range map[string]string{
		"8-bit header":          "Subject: Gr\xc3\xbc\xc3\x9fe\n\n\xc3\xa9\n",
		"8-bit part header":     "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Description: \xc3\xa9\n\n\xc3\xa9\n--b--\n",
		"8-bit inner header":    "Content-Type: message/rfc822\n\nSubject: \xc3\xa9\n\nx\n",
		"QP with 8-bit":         "Content-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\n\xc3\xa9\n",
		"no boundary":           "Content-Type: multipart/mixed\n\n\xc3\xa9\n",
		"encoded multipart":     "Content-Type: multipart/mixed; boundary=b\nContent-Transfer-Encoding: base64\n\n\xc3\xa9\n",
		"bad content type":      "Content-Type: text/\n\n\xc3\xa9\n",
		"bad multipart params":  "Content-Type: multipart/mixed; boundary=b; boundary=c\n\n--b\n\n\xc3\xa9\n--b--\n",
		"unknown encoding":      "Content-Type: text/plain\nContent-Transfer-Encoding: x-uuencode\n\n\xc3\xa9\n",
		"nested too deep":       deep,
		"header line not field": "this is no header\n\n\xc3\xa9\n",
	} {
		_, err := convert(t, in, false)
		var ce *convertError
		if !errors.As(err, &ce) {
			t.Errorf("%s: %v, want a convertError", name, err)
		}
	}
	// A bad parameter on a leaf leaves its type readable: converted.
	if out, err := convert(t, "Content-Type: text/plain; charset\n\nk\xc3\xb6nnen\n", false); err != nil || !strings.Contains(out, "k=C3=B6nnen") {
		t.Errorf("leaf with a bad parameter: %v\n%s", err, out)
	}
	// A next hop with SMTPUTF8 takes the 8-bit header; the body is
	// still converted.
	out, err := convert(t, "Subject: Gr\xc3\xbc\xc3\x9fe\n\nk\xc3\xb6nnen\n", true)
	if err != nil || !strings.Contains(out, "Subject: Gr\xc3\xbc\xc3\x9fe\r\n") || !strings.Contains(out, "k=C3=B6nnen") {
		t.Errorf("with SMTPUTF8: %v\n%s", err, out)
	}
}

func TestBodyStatsUTF8(t *testing.T) {
	for _, c := range []struct {
		in   string
		utf8 bool
	}{
		{"ascii", true}, {"\xc3\xa9t\xc3\xa9", true}, {"caf\xe9", false}, {"\xe2\x82", false}, {"\xe2\x82\xac", true},
	} {
		for split := 1; split <= len(c.in); split++ {
			var s bodyStats
			for i := 0; i < len(c.in); i += split {
				s.Write([]byte(c.in[i:min(i+split, len(c.in))]))
			}
			if s.validUTF8() != c.utf8 {
				t.Errorf("%q in pieces of %d: UTF-8 %v", c.in, split, s.validUTF8())
			}
		}
	}
}

// TestSevenBitSigned: to a next hop without 8BITMIME (smtp-sink -8) the
// message goes converted, and its DKIM signature is over the 7-bit bytes
// sent, after masquerade: it verifies as received, and there is one.
func TestSevenBitSigned(t *testing.T) {
	ctl, txt := dkimControl(t)
	c, err := FromControl(ctl)
	if err != nil {
		t.Fatal(err)
	}
	port, dir := startSink(t, "-8")
	body := "From: Joe <joe@kiosk1.local>\nTo: a@example.net\nSubject: hi\n\nGr\xc3\xbc\xc3\x9fe, and a = sign\n"
	res := c.Deliver(context.Background(), relay(port), writeMsg(t, body), "joe@kiosk1.local", []string{"a@example.net"})
	checkStatuses(t, res, "a@example.net=ok")
	_, msg := sinkDump(t, dir)
	data := []byte(strings.ReplaceAll(msg, "\n", "\r\n"))
	if n := strings.Count(msg, "DKIM-Signature:"); n != 1 {
		t.Fatalf("%d signatures:\n%s", n, msg)
	}
	if !strings.Contains(msg, "From: Joe <joe@example.org>\n") || !strings.Contains(msg, "Gr=C3=BC=C3=9Fe, and a =3D sign") {
		t.Errorf("not masqueraded and converted:\n%s", msg)
	}
	vs := verifyDKIM(t, data, txt)
	if len(vs) != 1 || vs[0].Err != nil || vs[0].Domain != "example.org" {
		t.Errorf("verification %+v\n%s", vs, msg)
	}
}

// TestSevenBitLongBase64: base64 lines are 76 characters, and a big part
// decodes to what it was.
func TestSevenBitLongBase64(t *testing.T) {
	bin := strings.Repeat("\xff\x00\x80abc\n", 500)
	in := "Content-Type: application/octet-stream\nContent-Transfer-Encoding: binary\n\n" + bin
	out, err := convert(t, in, false)
	if err != nil {
		t.Fatal(err)
	}
	_, b64, _ := strings.Cut(out, "\r\n\r\n")
	lines := strings.Split(strings.TrimSuffix(b64, "\r\n"), "\r\n")
	for i, l := range lines[:len(lines)-1] {
		if len(l) != 76 {
			t.Fatalf("line %d is %d long", i, len(l))
		}
	}
	if got := leaves(t, out); len(got) != 1 || got[0] != "application/octet-stream: "+bin {
		t.Errorf("decoded differs")
	}
}

// FuzzSevenBit: hostile MIME never panics the converter, and what it
// does not refuse comes out 7-bit.
func FuzzSevenBit(f *testing.F) {
	f.Add(mixed)
	f.Add("Subject: x\n\ncaf\xc3\xa9\n")
	f.Add("Content-Type: message/rfc822\n\nContent-Type: multipart/mixed; boundary=b\n\n--b\n\n\xff\n--b--\n")
	f.Fuzz(func(t *testing.T, in string) {
		var out bytes.Buffer
		err := sevenBit(&out, strings.NewReader(in), false)
		var ce *convertError
		if err != nil && !errors.As(err, &ce) {
			t.Fatalf("not a convertError: %v", err)
		}
		if err == nil {
			for i, c := range out.Bytes() {
				if c >= 0x80 {
					t.Fatalf("8-bit byte at %d:\n%q\nfrom\n%q", i, out.String(), in)
				}
			}
		}
	})
}

// To a server without 8BITMIME or PIPELINING that takes one recipient a
// transaction, every transaction carries the 7-bit copy, without BODY=.
func TestSevenBitTooManyRecipients(t *testing.T) {
	cs := &capServer{caps: []int{1}}
	port, got := cs.start(t, ehloPlain)
	body := "Subject: x\n\ncaf\xc3\xa9\n"
	res := (&Client{}).Deliver(context.Background(), relay(port), writeMsg(t, body), "s@x.test", []string{"a@x.test", "b@x.test"})
	checkStatuses(t, res, "a@x.test=ok b@x.test=ok")
	if s, want := cs.summary(), "MAIL a@x.test b@x.test! DATA . MAIL b@x.test DATA ."; s != want {
		t.Errorf("conversation %s, want %s", s, want)
	}
	data := got()
	if len(data) != 2 || data[0] != data[1] {
		t.Fatalf("messages %q", data)
	}
	for i := 0; i < len(data[1]); i++ {
		if data[1][i] >= 0x80 {
			t.Fatalf("8-bit byte at %d of the second message:\n%s", i, data[1])
		}
	}
	if l := leaves(t, data[1]); len(l) != 1 || l[0] != "text/plain: caf\xc3\xa9\n" {
		t.Errorf("decoded %q", l)
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for _, c := range cs.cmds {
		if strings.HasPrefix(c, "MAIL") && strings.Contains(c, "BODY=") {
			t.Errorf("%s", c)
		}
	}
}
