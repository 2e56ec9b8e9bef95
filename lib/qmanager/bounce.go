package qmanager

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"omail/lib/addr"
	"omail/lib/clock"
	"omail/lib/envelope"
	"omail/lib/queue"
)

// MaxBouncedMessage is the largest original message a bounce carries
// whole; a larger one is represented by its header only.
const MaxBouncedMessage = 128 << 10

// bounceFailed reports every Failed recipient of the message in one
// bounce, then marks them Bounced, exactly once whatever instant a crash
// comes at (docs/INTERNALS.md, "Exactly-once forwards and bounces"): the
// Failed recipients are written down first, so a repeat bounces the same
// set (the attempt starts with them), under an id derived from that set,
// which queue.BeginDerived queues once.
func (m *Manager) bounceFailed(st *queue.State) error {
	var failed []int
	for i, r := range st.Rcpts {
		if r.Status == queue.Failed {
			failed = append(failed, i)
		}
	}
	if len(failed) == 0 {
		return nil
	}
	to, sender := m.cfg().bounceTarget(st.Sender)
	var bounce []string // the derived id queued, until the state records it
	if to == "" {
		// A double bounce that fails: nobody is left to tell.
		m.logf("msg %s: double bounce failed, discarded: %s", st.ID, st.Rcpts[failed[0]].LastError)
	} else {
		if err := m.saveState(st); err != nil {
			return err
		}
		m.Q.Crash.At("bounce-failed-saved")
		id, err := m.queueBounce(st, failed, to, sender)
		if errors.Is(err, queue.ErrQueued) {
			m.logf("bounce msg %s qp %s to <%s> was queued already", st.ID, id, to)
		} else if err != nil {
			return err
		} else {
			m.logf("bounce msg %s qp %s to <%s>", st.ID, id, to)
		}
		m.Q.Notify()
		bounce = []string{id}
	}
	for _, i := range failed {
		st.Rcpts[i].Status = queue.Bounced
	}
	if err := m.saveState(st); err != nil {
		return err
	}
	m.forget(bounce, "bounce-recorded")
	return nil
}

// bounceID is the id of the bounce of st's recipients failed: derived
// from the set, which no other bounce of st shares (a recipient is
// bounced once).
func bounceID(st *queue.State, failed []int) string {
	var key strings.Builder
	key.WriteString("bounce")
	for _, i := range failed {
		fmt.Fprintf(&key, " %d", i)
	}
	return queue.DeriveID(st.ID, key.String())
}

// bounceTarget is where the bounce of a message from sender goes, and
// its envelope sender: to the sender, from <>; a bounce's bounce to
// doublebounceto, from DoubleBounceSender; for a double bounce, nowhere
// (to is empty).
func (c *config) bounceTarget(sender string) (to, from string) {
	switch sender {
	case DoubleBounceSender:
		return "", ""
	case "":
		return c.doubleBounceTo, DoubleBounceSender
	}
	return sender, ""
}

// queueBounce writes an RFC 3464 delivery status notification for the
// queued message st, streaming the original message into it, under its
// derived id (bounceID). It returns that id, with queue.ErrQueued when an
// earlier attempt queued it.
func (m *Manager) queueBounce(st *queue.State, failed []int, to, sender string) (string, error) {
	id := bounceID(st, failed)
	p, err := m.Q.BeginDerived(id)
	if err != nil {
		return id, err
	}
	defer p.Abort()
	orig, err := os.Open(m.Q.Path(queue.DirMess, st.ID))
	if err != nil {
		return id, err
	}
	defer orig.Close()
	fi, err := orig.Stat()
	if err != nil {
		return id, err
	}
	if _, err := m.writeBounceTo(p, st, failed, to, sender, orig, messageSize(st, fi.Size())); err != nil {
		return id, err
	}
	return id, nil
}

// pending is a message on its way into the queue: a queue.Pending, or a
// derived message (queue.Derived).
type pending interface {
	io.Writer
	Commit(*envelope.Envelope) (string, error)
}

// writeBounce queues the notification that st's failed recipients were
// not delivered, carrying the original message, the first size bytes of
// orig (whole
// up to MaxBouncedMessage, else its header), read as a stream. A UTF-8
// failed address, bounce recipient or original header makes it an RFC
// 6533 report (global-delivery-status, "utf-8;" addresses, message/global
// or message/global-headers for a UTF-8 original). The OCMP
// outbox's expiry uses it too, with a state made up from the entry.
func (m *Manager) writeBounce(st *queue.State, failed []int, to, sender string, orig io.Reader, size int64) (string, error) {
	p, err := m.Q.Begin()
	if err != nil {
		return "", err
	}
	defer p.Abort()
	return m.writeBounceTo(p, st, failed, to, sender, orig, size)
}

// writeBounceTo is writeBounce into p, which it commits.
func (m *Manager) writeBounceTo(p pending, st *queue.State, failed []int, to, sender string, orig io.Reader, size int64) (string, error) {
	c := m.cfg()
	w := bufio.NewWriter(p)
	now := clock.Now(m.Now)
	var rb [12]byte
	rand.Read(rb[:])
	boundary := "omail-" + hex.EncodeToString(rb[:])
	// RFC 6533: a report naming a UTF-8 address, or returning a message
	// with UTF-8 header fields, uses the "global" types; otherwise the
	// RFC 3464 ones, which every reader knows.
	globalReport := false
	for _, i := range failed {
		r := st.Rcpts[i]
		globalReport = globalReport || !addr.ASCII(r.Addr) || !addr.ASCII(r.LastError)
	}
	// The message is the first size bytes of orig and no more: a file
	// still in todo/ goes on with the envelope and state records, which
	// are the queue's own (every recipient, NUL bytes) and never go out.
	body := bufio.NewReaderSize(io.LimitReader(orig, size), bounceHeaderPeek)
	globalOrig := headerNeedsUTF8(body)
	globalReport = globalReport || globalOrig || !addr.ASCII(to)
	status, charset := "delivery-status", "us-ascii"
	if globalReport {
		status, charset = "global-delivery-status", "utf-8"
	}
	fmt.Fprintf(w, "From: %s (Mail Delivery System)\n", c.bounceFrom)
	fmt.Fprintf(w, "To: %s\n", to)
	subject := "failure notice"
	if sender == DoubleBounceSender {
		subject = "double bounce: failure notice for a bounce"
	}
	fmt.Fprintf(w, "Subject: %s\n", subject)
	fmt.Fprintf(w, "Date: %s\n", now.Format(time.RFC1123Z))
	fmt.Fprintf(w, "Message-ID: <%d.bounce.%s@%s>\n", now.Unix(), st.ID, c.me)
	fmt.Fprintf(w, "Auto-Submitted: auto-replied\n")
	fmt.Fprintf(w, "MIME-Version: 1.0\n")
	fmt.Fprintf(w, "Content-Type: multipart/report; report-type=%s;\n\tboundary=\"%s\"\n", status, boundary)
	// The returned message may hold 8-bit bytes, and it is streamed, not
	// looked at first: its part says 8bit, and so must every entity
	// around it (RFC 2045 section 6.4). 8bit is a true label for 7-bit
	// data too. A global report's own parts carry UTF-8.
	fmt.Fprintf(w, "Content-Transfer-Encoding: 8bit\n\n")
	fmt.Fprintf(w, "This is a MIME-encapsulated delivery status notification.\n\n")
	reportCTE := ""
	if globalReport {
		reportCTE = "Content-Transfer-Encoding: 8bit\n"
	}

	fmt.Fprintf(w, "--%s\nContent-Type: text/plain; charset=%s\n%s\n", boundary, charset, reportCTE)
	fmt.Fprintf(w, "This is the mail system at %s.\n\n", c.me)
	fmt.Fprintf(w, "I'm sorry, I could not deliver your message to the\n")
	fmt.Fprintf(w, "following address(es). This is a permanent error; I have given up.\n\n")
	for _, i := range failed {
		r := st.Rcpts[i]
		fmt.Fprintf(w, "<%s>:\n    %s\n\n", r.Addr, r.LastError)
	}

	fmt.Fprintf(w, "--%s\nContent-Type: message/%s\n%s\n", boundary, status, reportCTE)
	fmt.Fprintf(w, "Reporting-MTA: dns; %s\n", c.me)
	fmt.Fprintf(w, "X-Omail-Queue-ID: %s\n", st.ID)
	fmt.Fprintf(w, "Arrival-Date: %s\n", time.Unix(st.Queued, 0).Format(time.RFC1123Z))
	for _, i := range failed {
		r := st.Rcpts[i]
		// The utf-8 address type (RFC 6533 section 3) carries the address
		// as it is, which only message/global-delivery-status may hold.
		addrType := "rfc822"
		if !addr.ASCII(r.Addr) {
			addrType = "utf-8"
		}
		fmt.Fprintf(w, "\nFinal-Recipient: %s; %s\n", addrType, r.Addr)
		fmt.Fprintf(w, "Action: failed\n")
		fmt.Fprintf(w, "Status: %s\n", statusCode(r.LastError))
		fmt.Fprintf(w, "Diagnostic-Code: x-omail; %s\n", r.LastError)
	}
	fmt.Fprintf(w, "\n")

	whole, headers := "message/rfc822", "text/rfc822-headers"
	if globalOrig {
		whole, headers = "message/global", "message/global-headers"
	}
	if size <= MaxBouncedMessage {
		fmt.Fprintf(w, "--%s\nContent-Type: %s\nContent-Transfer-Encoding: 8bit\n\n", boundary, whole)
		if _, err := io.Copy(w, body); err != nil {
			return "", err
		}
	} else {
		fmt.Fprintf(w, "--%s\nContent-Type: %s\nContent-Transfer-Encoding: 8bit\n\n", boundary, headers)
		if err := copyHeader(w, body); err != nil {
			return "", err
		}
	}
	fmt.Fprintf(w, "\n--%s--\n", boundary)
	if err := w.Flush(); err != nil {
		return "", err
	}
	return p.Commit(&envelope.Envelope{Sender: sender, Rcpts: []string{to}})
}

// bounceHeaderPeek is how much of the original message a bounce looks at
// before writing anything, to choose message/global for one whose header
// holds UTF-8 (RFC 6532).
const bounceHeaderPeek = 64 << 10

// headerNeedsUTF8 says whether the header of the message in r holds a
// byte outside ASCII, looking only at what r buffers (Peek: nothing is
// consumed, the message is still streamed). A header longer than the
// buffer is taken to need UTF-8: message/global is the safe choice, since
// its readers take ASCII too, while message/rfc822 must not carry UTF-8.
func headerNeedsUTF8(r *bufio.Reader) bool {
	b, _ := r.Peek(r.Size())
	end := len(b)
	if bytes.HasPrefix(b, []byte("\n")) {
		end = 0
	} else if i := bytes.Index(b, []byte("\n\n")); i >= 0 {
		end = i
	} else if len(b) == r.Size() {
		return true
	}
	return !addr.ASCII(string(b[:end]))
}

// copyHeader copies the header block of a message, up to the blank line.
func copyHeader(w io.Writer, r io.Reader) error {
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			if string(line) == "\n" {
				return nil
			}
			if _, werr := w.Write(line); werr != nil {
				return werr
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// leadingStatus is an RFC 3463 status at the start of a text, as
// omail's own texts give it ("5.1.1 no such user", "4.4.1 cannot
// connect ...").
var leadingStatus = regexp.MustCompile(`^([245])\.\d{1,3}\.\d{1,3}\b`)

// remoteReply is a server's reply in remote delivery's text ("HOST said:
// 550 5.1.1 no such user"), with the status that follows the code, if
// any.
var remoteReply = regexp.MustCompile(`\bsaid: ([245])\d\d(?: ([245]\.\d{1,3}\.\d{1,3})\b)?`)

// statusCode gives the RFC 3463 status of a failure text, as Postfix
// reports the last temporary error of an expired message. It is the
// status the text starts with, else the one a server gave after its
// reply code when its class is the code's, else N.0.0 for a reply code
// of class N. The text is never searched anywhere else: a host's
// address ("[4.2.2.1] said: 550 ...") or words of the reply ("your host
// [4.4.7.9] is blocked") are not a status. An expired message is judged
// by its last error; failing all that, 4.4.7 (delivery time expired)
// for an expired message, else 5.0.0.
func statusCode(text string) string {
	expired := strings.HasPrefix(text, "message expired")
	if expired {
		_, last, _ := strings.Cut(text, "; last error: ")
		text = last
	}
	if m := leadingStatus.FindString(text); m != "" {
		return m
	}
	if m := remoteReply.FindStringSubmatch(text); m != nil {
		if m[2] != "" && m[2][0] == m[1][0] {
			return m[2]
		}
		return m[1] + ".0.0"
	}
	if expired {
		return "4.4.7"
	}
	return "5.0.0"
}
