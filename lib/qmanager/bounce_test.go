package qmanager

import (
	"bufio"
	"context"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"strings"
	"testing"

	"omail/lib/envelope"
	"omail/lib/outcome"
	"omail/lib/queue"
	"omail/lib/route"
)

// bounceParts queues msg from sender to rcpt, makes every local delivery
// fail permanently, and returns the bounce's report-type and its parts
// (content type, body).
func bounceParts(t *testing.T, sender, rcpt, msg string) (string, [][2]string) {
	t.Helper()
	return reportParts(t, bounceOf(t, sender, rcpt, msg))
}

// bounceOf queues msg from sender to rcpt, makes every local delivery
// fail permanently, and returns the bounce.
func bounceOf(t *testing.T, sender, rcpt, msg string) string {
	t.Helper()
	f := newFixture(t, map[string]string{})
	f.m.T.Local = func(ctx context.Context, msgPath, sender, rcpt string) outcome.Result {
		return outcome.Result{Status: outcome.Perm, Text: "5.1.1 no such user: " + strings.Split(rcpt, "@")[0]}
	}
	if _, err := f.m.Q.Enqueue(strings.NewReader(msg), &envelope.Envelope{Sender: sender, Rcpts: []string{rcpt}}); err != nil {
		t.Fatal(err)
	}
	f.flush()
	msgs := f.messages()
	if len(msgs) != 1 {
		t.Fatalf("want one bounce, have %v", msgs)
	}
	var id string
	for k, st := range msgs {
		if st.Rcpts[0].Addr != sender {
			t.Fatalf("bounce to %q, want %q", st.Rcpts[0].Addr, sender)
		}
		id = k
	}
	return f.message(id)
}

// reportParts returns a bounce's report-type and its parts (content
// type, body), checking that it is a multipart/report of three parts.
func reportParts(t *testing.T, bounce string) (string, [][2]string) {
	t.Helper()
	m, err := mail.ReadMessage(strings.NewReader(bounce))
	if err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/report" {
		t.Fatalf("Content-Type %q: %v", m.Header.Get("Content-Type"), err)
	}
	var parts [][2]string
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(p)
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, [2]string{p.Header.Get("Content-Type"), string(b)})
	}
	if len(parts) != 3 {
		t.Fatalf("want 3 parts, have %d: %q", len(parts), parts)
	}
	return params["report-type"], parts
}

// RFC 6533: the global types when a failed address, or the returned
// message's header, holds UTF-8; RFC 3464's otherwise.
func TestBounceGlobalTypes(t *testing.T) {
	ascii := "Subject: test\n\nbody\n"
	utf8Header := "Subject: Grüße\nFrom: Jürgen <jürgen@köln.example>\n\nHallo\n"
	big := "Subject: Grüße\n\n" + strings.Repeat("line of a large message\n", MaxBouncedMessage/20)
	cases := []struct {
		name, sender, rcpt, msg       string
		report, text, orig, recipient string
	}{
		{"ascii", "x@remote.example", "nobody@test.example", ascii,
			"delivery-status", "text/plain; charset=us-ascii", "message/rfc822", "Final-Recipient: rfc822; nobody@test.example\n"},
		{"utf-8 recipient", "x@remote.example", "jörg@test.example", ascii,
			"global-delivery-status", "text/plain; charset=utf-8", "message/rfc822", "Final-Recipient: utf-8; jörg@test.example\n"},
		{"utf-8 header", "x@remote.example", "nobody@test.example", utf8Header,
			"global-delivery-status", "text/plain; charset=utf-8", "message/global", "Final-Recipient: rfc822; nobody@test.example\n"},
		{"utf-8 sender", "jürgen@köln.example", "nobody@test.example", ascii,
			"global-delivery-status", "text/plain; charset=utf-8", "message/rfc822", "Final-Recipient: rfc822; nobody@test.example\n"},
		{"large, utf-8 header", "x@remote.example", "nobody@test.example", big,
			"global-delivery-status", "text/plain; charset=utf-8", "message/global-headers", "Final-Recipient: rfc822; nobody@test.example\n"},
		{"large, ascii", "x@remote.example", "nobody@test.example", strings.Replace(big, "Grüße", "hello", 1),
			"delivery-status", "text/plain; charset=us-ascii", "text/rfc822-headers", "Final-Recipient: rfc822; nobody@test.example\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			report, parts := bounceParts(t, c.sender, c.rcpt, c.msg)
			if report != c.report {
				t.Errorf("report-type %q, want %q", report, c.report)
			}
			if parts[0][0] != c.text || !strings.Contains(parts[0][1], "<"+c.rcpt+">:") {
				t.Errorf("text part %q: %q", parts[0][0], parts[0][1])
			}
			if parts[1][0] != "message/"+c.report || !strings.Contains(parts[1][1], c.recipient) {
				t.Errorf("status part %q: %q", parts[1][0], parts[1][1])
			}
			if parts[2][0] != c.orig || !strings.HasPrefix(parts[2][1], strings.SplitN(c.msg, "\n", 2)[0]+"\n") {
				t.Errorf("returned part %q: %.80q", parts[2][0], parts[2][1])
			}
		})
	}
}

func TestHeaderNeedsUTF8(t *testing.T) {
	for _, c := range []struct {
		msg  string
		want bool
	}{
		{"Subject: x\n\nGrüße\n", false},
		{"Subject: Grüße\n\nx\n", true},
		{"\nGrüße, no header\n", false},
		{"Subject: x", false},
		{"Subject: " + strings.Repeat("x", bounceHeaderPeek) + "\n\nbody\n", true},
	} {
		r := bufio.NewReaderSize(strings.NewReader(c.msg), bounceHeaderPeek)
		if got := headerNeedsUTF8(r); got != c.want {
			t.Errorf("%.40q: %v, want %v", c.msg, got, c.want)
		}
		if b, _ := io.ReadAll(r); string(b) != c.msg {
			t.Errorf("%.40q: the peek consumed the message", c.msg)
		}
	}
}

// The DSN Status comes from the start of the text, or from the reply
// code and the status right after it, never from anything else in the
// text: an address in brackets or in the server's words is not one.
func TestStatusCode(t *testing.T) {
	for text, want := range map[string]string{
		"5.1.1 no such user: joe":                                                                            "5.1.1",
		"[4.2.2.1] said: 550 no such user here":                                                              "5.0.0",
		"[4.2.2.1] said: 550 5.1.1 no such user here":                                                        "5.1.1",
		"[mx.example] said: 554 your host [4.4.7.9] is blocked":                                              "5.0.0",
		"mx.example said: 552 4.2.2 mailbox full":                                                            "5.0.0",
		"MAIL: 5.6.7.8 said: 553 5.7.1 go away":                                                              "5.7.1",
		"DATA: [192.0.2.1] said: 554":                                                                        "5.0.0",
		"5.1.3 address \"x\" cannot be sent by SMTP":                                                         "5.1.3",
		"routing: something broke at 4.4.4.4":                                                                "5.0.0",
		"message expired after 168h0m0s in the queue; last error: mx said: 451 4.3.0 disk full":              "4.3.0",
		"message expired after 168h0m0s in the queue; last error: [4.5.6.7] said: 421 closing":               "4.0.0",
		"message expired after 168h0m0s in the queue; last error: 4.4.1 cannot connect to mx (192.0.2.1:25)": "4.4.1",
		"message expired after 168h0m0s in the queue; last error: 4.5.0 DATA: mx said: 250 ok":               "4.5.0",
		"message expired after 168h0m0s in the queue; last error: timeout at 5.5.5.5":                        "4.4.7",
		"message expired after 5s in the OCMP outbox for endpoint k1 (not packed for the link)":              "4.4.7",
	} {
		if got := statusCode(text); got != want {
			t.Errorf("statusCode(%q) = %s, want %s", text, got, want)
		}
	}
}

// A bounce from the first attempt, delivered from inside todo/ID where
// the message is followed by the envelope and state records, carries the
// message alone: never the recipients, NUL bytes or the entry's footer.
func TestBounceFromTodoCarriesTheMessageAlone(t *testing.T) {
	f := newFixture(t, map[string]string{"locals": "test.example"})
	f.localPart(func(rcpt string) outcome.Result {
		if rcpt == "nobody@test.example" {
			return outcome.Result{Status: outcome.Perm, Text: "5.1.1 no such user: nobody"}
		}
		return ok(rcpt)
	})
	id := f.enqueue("s@elsewhere.example", "bob@test.example", "nobody@test.example")
	f.flush()
	msgs := f.messages()
	if len(msgs) != 1 {
		t.Fatalf("want one bounce, have %v", msgs)
	}
	for bid := range msgs {
		if bid == id {
			t.Fatalf("msg %s is still queued", id)
		}
		bounce := f.message(bid)
		_, parts := reportParts(t, bounce)
		if parts[2][0] != "message/rfc822" || parts[2][1] != fixtureMessage {
			t.Errorf("returned part %q: %q, want the message alone %q", parts[2][0], parts[2][1], fixtureMessage)
		}
		if strings.Contains(bounce, "bob@test.example") || strings.ContainsAny(bounce, "\x00") {
			t.Errorf("the bounce tells of the other recipient or holds NUL bytes:\n%q", bounce)
		}
	}
}

// A bounce keeps every line within RFC 5322's 998 characters and free of
// control characters, whatever text the transport reported (the
// in-process SMTP client joins a multi-line reply into one line, uncut);
// it says what the state file keeps.
func TestBounceLinesStayShortAndClean(t *testing.T) {
	f := newFixture(t, map[string]string{"smtproutes": ":relay.example"})
	long := "127.0.0.1 said: 550 " + strings.Repeat("5.7.1 policy text / ", 100) + "\rend"
	f.m.T.Remote = func(ctx context.Context, dest route.Dest, msgPath, sender string, rcpts []string) []outcome.Result {
		return []outcome.Result{{Status: outcome.Perm, Text: long}}
	}
	id := f.enqueue("s@test.example", "x@far.example")
	f.flush()
	msgs := f.messages()
	if len(msgs) != 1 {
		t.Fatalf("want one bounce, have %v", msgs)
	}
	want := errorText(long)
	if len(want) > queue.MaxErrorText || strings.ContainsAny(want, "\r\x00") {
		t.Fatalf("errorText: %d bytes: %q", len(want), want)
	}
	for bid := range msgs {
		if bid == id {
			t.Fatalf("msg %s is still queued", id)
		}
		bounce := f.message(bid)
		for n, l := range strings.Split(bounce, "\n") {
			if len(l) > 998 || strings.ContainsAny(l, "\r\x00") {
				t.Errorf("bounce line %d: %d bytes, CR or NUL %v", n+1, len(l), strings.ContainsAny(l, "\r\x00"))
			}
		}
		if !strings.Contains(bounce, "Diagnostic-Code: x-omail; "+want+"\n") {
			t.Errorf("the bounce does not give the text as the state keeps it, %q:\n%s", want, bounce)
		}
	}
}

// The returned message may hold 8-bit bytes: its part says
// Content-Transfer-Encoding: 8bit, and so does the multipart around it
// (RFC 2045 section 6.4, RFC 2046 section 5.2.1), as do the report's own
// parts when they carry UTF-8.
func TestBounceDeclaresEightBit(t *testing.T) {
	latin1 := "Subject: test\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n\nGr\xfc\xdfe\n"
	for _, c := range []struct {
		name, rcpt string
		parts      []string // each part's Content-Transfer-Encoding
	}{
		{"ascii report", "nobody@test.example", []string{"", "", "8bit"}},
		{"utf-8 report", "jörg@test.example", []string{"8bit", "8bit", "8bit"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := mail.ReadMessage(strings.NewReader(bounceOf(t, "x@remote.example", c.rcpt, latin1)))
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Header.Get("Content-Transfer-Encoding"); got != "8bit" {
				t.Errorf("multipart/report: Content-Transfer-Encoding %q, want 8bit", got)
			}
			_, params, _ := mime.ParseMediaType(m.Header.Get("Content-Type"))
			mr := multipart.NewReader(m.Body, params["boundary"])
			for i, want := range c.parts {
				p, err := mr.NextRawPart()
				if err != nil {
					t.Fatal(err)
				}
				if got := p.Header.Get("Content-Transfer-Encoding"); got != want {
					t.Errorf("part %d (%s): Content-Transfer-Encoding %q, want %q", i+1, p.Header.Get("Content-Type"), got, want)
				}
				if i == 2 {
					b, _ := io.ReadAll(p)
					if string(b) != latin1 {
						t.Errorf("returned message %q, want %q", b, latin1)
					}
				}
			}
		})
	}
}
