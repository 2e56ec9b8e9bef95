package qmanager

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"

	"omail/lib/clock"
	"omail/lib/outbox"
	"omail/lib/queue"
)

// home is OMAIL_HOME, where the OCMP outbox is.
func (m *Manager) home() string {
	if m.Home != "" {
		return m.Home
	}
	return filepath.Dir(m.Q.Dir)
}

// MissingUploadWarning is how often the sweep repeats its warning about
// an endpoint whose upload directory is missing.
const MissingUploadWarning = 24 * time.Hour

// sweepOutbox looks after the mail that has left the queue for the OCMP
// outbox and waits there for omail-pack: an entry older than
// outboxlifetime is bounced to its sender and removed (a link that never
// comes back must not swallow mail silently), and an endpoint whose
// upload directory is missing, so that nothing will ever be packed, is
// warned about once a day. Held entries are left alone. It takes the
// outbox's lock, so never an entry a pass of omail-pack is packing.
func (m *Manager) sweepOutbox() {
	h := m.home()
	sums, err := outbox.Summarize(h, m.Ctl)
	if err != nil {
		m.logf("warning: cannot read the OCMP outbox: %v", err)
		return
	}
	if len(sums) == 0 {
		return
	}
	now := clock.Now(m.Now)
	m.settleOutbox(sums, now)
	create, err := m.Ctl.Bool("ocmpcreateuserdir")
	if err != nil {
		m.logf("warning: %v", err)
	}
	m.mu.Lock()
	if m.warned == nil {
		m.warned = map[string]time.Time{}
	}
	for _, s := range sums {
		if s.UploadOK || create || s.Messages == s.Held {
			delete(m.warned, s.Endpoint)
			continue
		}
		if last, ok := m.warned[s.Endpoint]; ok && now.Sub(last) < MissingUploadWarning {
			continue
		}
		m.warned[s.Endpoint] = now
		m.logf("warning: outbox %s: %d message(s) wait, the oldest for %s, and its upload directory %s does not exist (ocmpcreateuserdir is 0)",
			s.Endpoint, s.Messages-s.Held, now.Sub(s.Oldest).Round(time.Second), s.Upload)
	}
	m.mu.Unlock()

	lifetime := m.cfg().outboxLifetime
	if lifetime <= 0 {
		return
	}
	var expired []string
	for _, s := range sums {
		if s.Messages > s.Held && now.Sub(s.Oldest) > lifetime {
			expired = append(expired, s.Endpoint)
		}
	}
	m.underOutboxLock(expired, func(ep string) error { return m.expireOutbox(ep, now, lifetime) })
}

// underOutboxLock runs do for each of the endpoints eps under the
// outbox's lock, and logs its errors; it skips an endpoint whose entries
// may be in a bundle still to be published (outbox.PassPending): they
// are changed after omail-pack's next pass, not beside it.
func (m *Manager) underOutboxLock(eps []string, do func(ep string) error) {
	if len(eps) == 0 {
		return
	}
	h := m.home()
	unlock, err := outbox.Lock(h)
	if err != nil {
		m.logf("warning: cannot lock the OCMP outbox: %v", err)
		return
	}
	defer unlock()
	for _, ep := range eps {
		if outbox.PassPending(h, ep) {
			continue
		}
		if err := do(ep); err != nil {
			m.logf("warning: outbox %s: %v", ep, err)
		}
	}
}

// settleOutbox gives the entries dated in the future (written while the
// clock ran ahead, set back since) the time now, so that their wait,
// outboxlifetime's, counts from this sweep (outbox.Settle); sums' oldest
// times follow. An endpoint with a pass pending is left for a later
// sweep, as expiry is.
func (m *Manager) settleOutbox(sums []outbox.Summary, now time.Time) {
	var ahead []string
	for i := range sums {
		if sums[i].Newest.After(now) {
			ahead = append(ahead, sums[i].Endpoint)
		}
		if sums[i].Oldest.After(now) {
			sums[i].Oldest = now
		}
	}
	m.underOutboxLock(ahead, func(ep string) error {
		// The time is read again under the lock: omail-pack may have
		// held it for a whole pass, during which new entries came in,
		// and they are not ahead of now.
		n, err := outbox.Settle(m.home(), ep, clock.Now(m.Now))
		if n > 0 {
			m.logf("outbox %s: %d message(s) dated in the future (the clock was set back): they wait from now", ep, n)
		}
		return err
	})
}

// expireOutbox bounces and removes one endpoint's entries older than
// lifetime. The bounce is queued before the entry is removed: a crash in
// between sends the bounce twice, never zero times.
func (m *Manager) expireOutbox(ep string, now time.Time, lifetime time.Duration) error {
	h := m.home()
	names, err := outbox.List(h, ep)
	if err != nil {
		return err
	}
	for _, n := range names {
		age, err := outbox.Waiting(h, ep, n, false, now)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if age <= lifetime {
			continue
		}
		e, err := outbox.Open(h, ep, n)
		if errors.Is(err, outbox.ErrCorrupt) {
			continue // omail-pack sets it aside
		}
		if err != nil {
			return err
		}
		why := fmt.Sprintf("message expired after %s in the OCMP outbox for endpoint %s (not packed for the link)", lifetime, ep)
		st := &queue.State{ID: n, Queued: now.Add(-age).Unix(), Sender: e.Sender}
		failed := make([]int, len(e.Rcpts))
		for i, r := range e.Rcpts {
			st.Rcpts = append(st.Rcpts, queue.Rcpt{Addr: r, Status: queue.Failed, LastError: why})
			failed[i] = i
		}
		to, sender := m.cfg().bounceTarget(e.Sender)
		if to == "" {
			m.logf("outbox %s/%s: expired double bounce discarded", ep, n)
		} else {
			id, err := m.writeBounce(st, failed, to, sender, e, e.Size)
			if err != nil {
				e.Close()
				return err
			}
			m.logf("outbox %s/%s expired: bounce qp %s to <%s>", ep, n, id, to)
			m.Q.Notify()
		}
		e.Close()
		if err := outbox.Delete(h, ep, n, false); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}
