package remote

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// scripted is a raw SMTP server on 127.0.0.1, for replies go-smtp never
// gives: answer(cmd) returns the reply bytes to each command line ("."
// for the end of data, whose lines are collected). After QUIT it waits
// for the client to close. It returns the port and the messages taken.
func scripted(t *testing.T, answer func(cmd string) string) (int, func() []string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	var mu sync.Mutex
	var data []string
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func(c net.Conn) {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				io.WriteString(c, answer(""))
				for {
					l, err := br.ReadString('\n')
					if err != nil {
						return
					}
					cmd := strings.TrimRight(l, "\r\n")
					if cmd == "DATA" {
						io.WriteString(c, answer(cmd))
						var b strings.Builder
						for {
							l, err := br.ReadString('\n')
							if err != nil {
								return
							}
							if l == ".\r\n" {
								break
							}
							b.WriteString(l)
						}
						mu.Lock()
						data = append(data, b.String())
						mu.Unlock()
						cmd = "."
					}
					io.WriteString(c, answer(cmd))
				}
			}(c)
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), data...)
	}
}

// plainAnswers answers as a simple server does; end is the reply to the
// end of data.
func plainAnswers(ehlo, end string) func(cmd string) string {
	return func(cmd string) string {
		switch {
		case cmd == "":
			return "220 sink.test ESMTP\r\n"
		case strings.HasPrefix(cmd, "EHLO"):
			return ehlo
		case cmd == "DATA":
			return "354 go on\r\n"
		case cmd == ".":
			return end
		case cmd == "QUIT":
			return "221 bye\r\n"
		}
		return "250 ok\r\n"
	}
}

// RFC 5321 4.2: the text of a reply is optional. A bare "250" at the end
// of data is a delivery, not a lost connection after which the message
// would be sent again at every retry; nor does a multi-line reply whose
// last line is a bare code wait for more.
func TestBareReplyCode(t *testing.T) {
	port, got := scripted(t, plainAnswers("250-sink.test\r\n250-8BITMIME\r\n250\r\n", "250\r\n"))
	// The timeout only ends a wait for a reply that never comes.
	res := (&Client{CommandTimeout: time.Minute}).Deliver(context.Background(), relay(port), writeMsg(t, "Subject: x\n\nhello\n"), "s@x.test", []string{"a@x.test"})
	checkStatuses(t, res, "a@x.test=ok")
	if res[0].Text != "[127.0.0.1] said: 250" {
		t.Errorf("text %q", res[0].Text)
	}
	if n := len(got()); n != 1 {
		t.Errorf("%d messages accepted", n)
	}
}

// A reply that is not SMTP is a failure of the connection, named as such:
// at the end of data the recipient is deferred (it may arrive twice).
func TestGarbageReply(t *testing.T) {
	port, _ := scripted(t, plainAnswers("250 sink.test\r\n", "OK, thanks\r\n"))
	res := (&Client{}).Deliver(context.Background(), relay(port), writeMsg(t, "x\n"), "s@x.test", []string{"a@x.test"})
	checkStatuses(t, res, "a@x.test=temp")
	if !strings.Contains(res[0].Text, `malformed reply: "OK, thanks" does not start with a reply code`) {
		t.Errorf("text %q", res[0].Text)
	}
}

func TestReadReply(t *testing.T) {
	for _, c := range []struct {
		in   string
		code int
		msg  string
		err  string
	}{
		{in: "250\r\n", code: 250},
		{in: "250 ok\r\n", code: 250, msg: "ok"},
		{in: "250 \r\n", code: 250},
		{in: "250 ok\n", code: 250, msg: "ok"},
		{in: "250-a\r\n250-b c\r\n250 d\r\n", code: 250, msg: "a\nb c\nd"},
		{in: "250-a\r\n250\r\n", code: 250, msg: "a\n"},
		{in: "250-\r\n250 x\r\n", code: 250, msg: "\nx"},
		{in: "550 5.1.1 no\r\nrest", code: 550, msg: "5.1.1 no"},
		{in: "", err: "EOF"},
		{in: "250 ok", err: "unexpected EOF"},
		{in: "250-a\r\n", err: "EOF"},
		{in: "25\r\n", err: `malformed reply: "25" does not start with a reply code`},
		{in: "\r\n", err: "does not start with a reply code"},
		{in: "150 x\r\n", err: "does not start with a reply code"},
		{in: "2a0 x\r\n", err: "does not start with a reply code"},
		{in: "250ok\r\n", err: `"250ok": no space or hyphen after the code`},
		{in: "250-a\r\n251 b\r\n", err: "code 251 in a reply that began with 250"},
		{in: "250 " + strings.Repeat("x", maxReplyLine) + "\r\n", err: "a line too long"},
		{in: strings.Repeat("250-x\r\n", maxReplyLines+1), err: "more than 1000 lines"},
	} {
		code, msg, err := readReply(bufio.NewReader(strings.NewReader(c.in)))
		in := c.in
		if len(in) > 40 {
			in = in[:40] + "..."
		}
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%q: error %v, want %q", in, err, c.err)
		case c.err == "" && (err != nil || code != c.code || msg != c.msg):
			t.Errorf("%q: %d %q %v, want %d %q", in, code, msg, err, c.code, c.msg)
		}
	}
}

func FuzzReadReply(f *testing.F) {
	for _, s := range []string{"250\r\n", "250-a\r\n250 b\r\n", "250-a\n250\n", "550 5.1.1 x\r\n", "2", "250x\r\n", "250-a\r\n251 b\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		code, msg, err := readReply(bufio.NewReader(strings.NewReader(string(b))))
		if err != nil {
			var re *replyError
			if !errors.As(err, &re) && err != io.EOF && err != io.ErrUnexpectedEOF {
				t.Fatalf("error of an unknown kind: %v", err)
			}
			return
		}
		if code < 200 || code > 599 {
			t.Fatalf("code %d", code)
		}
		// Each line of the reply holds its code, and so at least
		// three bytes of input; the text never holds a line end but
		// the one joining lines.
		if lines := strings.Count(msg, "\n") + 1; lines*4 > len(b) {
			t.Fatalf("%d lines of text from %d bytes", lines, len(b))
		}
		if strings.Contains(msg, "\r\n") {
			t.Fatalf("CRLF in the text %q", msg)
		}
	})
}

// After the end-of-data 250 the peer has the message: Deliver sends QUIT
// and returns without waiting for its answer (as qmail-remote), so that
// the queue records the delivery at once. The server here answers QUIT
// only once Deliver has returned: a client that waited for the answer
// would wait for ever (the deadline below only keeps the test from
// hanging).
func TestQuitNotAwaited(t *testing.T) {
	returned := make(chan struct{})
	quit := make(chan struct{}, 1)
	answer := plainAnswers("250 sink.test\r\n", "250 accepted\r\n")
	port, got := scripted(t, func(cmd string) string {
		if cmd == "QUIT" {
			quit <- struct{}{}
			<-returned
		}
		return answer(cmd)
	})
	done := make(chan []Result, 1)
	c := &Client{CommandTimeout: time.Hour}
	go func() {
		done <- c.Deliver(context.Background(), relay(port), writeMsg(t, "x\n"), "s@x.test", []string{"a@x.test"})
	}()
	select {
	case res := <-done:
		close(returned)
		checkStatuses(t, res, "a@x.test=ok")
	case <-time.After(time.Minute):
		close(returned)
		t.Fatal("Deliver still waits for the answer to QUIT")
	}
	<-quit
	if n := len(got()); n != 1 {
		t.Errorf("%d messages accepted", n)
	}
}
