package unpacker

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"omail/lib/bundle"
	"omail/lib/clock"
	"omail/lib/control"
	"omail/lib/envelope"
	"omail/lib/qexit"
	"omail/lib/qqclient"
	"omail/lib/seen"
	"omail/lib/senders"
)

// proxy puts each message into the queue with its envelope. The
// progress journal holds how many messages are queued, durably, so that
// a re-run after a crash or a temporary failure goes on from there.
func (u *Unpacker) proxy(r *bundle.Reader, st *seen.Store, ru *rules) error {
	h := r.Header
	if ru.senders == nil {
		u.Log.Printf("bundle %s: endpoint %s: no control file %s: relaying whatever sender its messages have", h.ID, ru.endpoint, senders.File)
	}
	start := 0
	if data, err := st.Progress(r.Header.ID); err == nil {
		start, _ = strconv.Atoi(strings.TrimSpace(string(data)))
		u.Log.Printf("bundle %s: %d messages queued by an earlier run", r.Header.ID, start)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for i := 1; ; i++ {
		m, err := r.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if i <= start {
			continue
		}
		done, err := u.screen(h, i, m, ru)
		if err != nil {
			return err
		}
		if done {
			if err := u.recordProgress(st, h.ID, i); err != nil {
				return err
			}
			continue
		}
		code, err := u.queue(r.Header, i, m)
		if err != nil {
			return err
		}
		switch {
		case code == qexit.OK:
			u.Log.Printf("bundle %s: message %d from <%s> to %s: queued", r.Header.ID, i, m.Sender, strings.Join(m.Rcpts, ","))
		case qexit.Permanent(code):
			// The queue will never take it; retrying would hold up the
			// whole bundle for ever. The sender is told, as any MTA
			// would bounce it, and the rest of the bundle goes on.
			u.Log.Printf("bundle %s: message %d from <%s> to %s: the queue refuses it permanently (%s): bounced",
				r.Header.ID, i, m.Sender, strings.Join(m.Rcpts, ","), qexit.Describe(code))
			if err := u.bounce(r.Header, i, m, "the mail queue\nrefused it for good: "+qexit.Describe(code)); err != nil {
				return err
			}
		default:
			return fmt.Errorf("message %d: queue: %s", i, qexit.Describe(code))
		}
		if err := u.recordProgress(st, h.ID, i); err != nil {
			return err
		}
	}
}

// recordProgress writes down that message i of bundle id is done with
// (queued, bounced or quarantined): a re-run starts after it.
func (u *Unpacker) recordProgress(st *seen.Store, id string, i int) error {
	u.crash("unpack-queued")
	if err := st.SetProgress(id, []byte(strconv.Itoa(i)+"\n")); err != nil {
		return err
	}
	u.crash("unpack-progress")
	return nil
}

// screen applies the endpoint's sender policy and databytes to message
// i before anything of it is written: done is true when the message is
// not to be queued, and was quarantined or bounced instead. A sender the
// endpoint may not use is never bounced (that would send mail to a
// forged address); a message too big goes back to a sender it may use,
// with 5.3.4 as over SMTP.
func (u *Unpacker) screen(h bundle.Header, i int, m *bundle.Message, ru *rules) (done bool, err error) {
	rcpts := strings.Join(m.Rcpts, ",")
	big := ru.databytes > 0 && m.Size > ru.databytes
	var why string
	switch {
	case ru.senders != nil && !ru.senders.Allows(ru.endpoint, m.Sender):
		why = fmt.Sprintf("endpoint %s may not send as <%s> (%s)", ru.endpoint, m.Sender, senders.File)
	case big && (m.Sender == "" || m.Sender == "#@[]"):
		why = fmt.Sprintf("%d bytes, over databytes %d, and a bounce: nobody to tell", m.Size, ru.databytes)
	case big:
		u.Log.Printf("bundle %s: message %d from <%s> to %s: %d bytes, over databytes %d: not relayed, bounced (5.3.4)",
			h.ID, i, m.Sender, rcpts, m.Size, ru.databytes)
		return true, u.bounce(h, i, m, fmt.Sprintf("it is %d bytes,\nmore than the %d this proxy relays (5.3.4 message too big)", m.Size, ru.databytes))
	default:
		return false, nil
	}
	path, err := u.quarantineMessage(h, i, m, why, !big)
	if err != nil {
		return false, fmt.Errorf("message %d: quarantining it: %v", i, err)
	}
	u.Log.Printf("bundle %s: endpoint %s: message %d from <%s> to %s: refused: %s: not relayed, not bounced, kept in %s",
		h.ID, ru.endpoint, i, m.Sender, rcpts, why, path)
	return true, nil
}

// queue puts one message into the queue: the message (behind a
// Received: line) on the queue program's fd 0, the envelope on its fd 1,
// or the same in this process (qqclient.Open). The envelope is written
// only after the whole message was read intact, so a message that turns
// out damaged is never queued.
func (u *Unpacker) queue(h bundle.Header, i int, m *bundle.Message) (int, error) {
	c, err := qqclient.Open(u.Env, u.Log.Raw())
	if err != nil {
		return 0, err
	}
	bw := bufio.NewWriterSize(c, 64<<10)
	bw.WriteString(u.received(h, i) + "\n")
	// c never fails a write, so an error here is reading the bundle.
	_, copyErr := io.Copy(bw, m.Body)
	if copyErr == nil {
		copyErr = bw.Flush()
	}
	if copyErr != nil {
		c.Abort() // no envelope: nothing is queued
		return 0, copyErr
	}
	code, err := c.Commit(&envelope.Envelope{Sender: m.Sender, Rcpts: m.Rcpts})
	if code != qexit.OK {
		u.Log.Printf("bundle %s: message %d: %v", h.ID, i, err)
	}
	return code, nil
}

// bounce tells the sender of a message that it was not relayed, and
// why (it completes "came here ..., and"). A bounce cannot be bounced: a
// refused bounce is only logged.
func (u *Unpacker) bounce(h bundle.Header, i int, m *bundle.Message, why string) error {
	if m.Sender == "" || m.Sender == "#@[]" {
		return nil
	}
	me, err := control.New(u.Home).Me()
	if err != nil {
		return err
	}
	c, err := qqclient.Open(u.Env, u.Log.Raw())
	if err != nil {
		return err
	}
	now := clock.Now(u.Now)
	fmt.Fprintf(c, "From: MAILER-DAEMON@%s (Mail Delivery System)\nTo: %s\nSubject: failure notice\n", me, m.Sender)
	fmt.Fprintf(c, "Date: %s\nAuto-Submitted: auto-replied\nMIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\n", now.Format(time.RFC1123Z))
	fmt.Fprintf(c, "This is omail-unpack at %s.\n\nYour message to\n", me)
	for _, r := range m.Rcpts {
		fmt.Fprintf(c, "    <%s>\n", r)
	}
	fmt.Fprintf(c, "\ncame here from endpoint %s (bundle %s, message %d), and %s.\nThis is a permanent error; it was not delivered.\n", h.Endpoint, h.ID, i, why)
	qc, err := c.Commit(&envelope.Envelope{Sender: "", Rcpts: []string{m.Sender}})
	if qc != qexit.OK {
		if qexit.Permanent(qc) {
			u.Log.Printf("bundle %s: message %d: the bounce was refused too (%v); not bounced", h.ID, i, err)
			return nil
		}
		return fmt.Errorf("queueing a bounce: %v", err)
	}
	return nil
}
