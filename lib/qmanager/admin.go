package qmanager

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"time"

	"omail/lib/queue"
	"omail/lib/safefile"
)

// The administrator's actions on queued messages (omail-deliver -hold,
// -release, -retry, -delete; lib/delivercmd/admin.go). Hold, release and
// retry write notes that attempts read under the message's lock (notes.go
// in lib/queue); delete takes the lock itself, as an attempt does, so it
// never removes a message an attempt is delivering.

// ErrUnknown is an id that names no queued message. ErrFinished is a
// message that was queued when asked for, and finished (delivered,
// bounced, or handed to the OCMP outbox) by the attempt the action
// waited for.
var (
	ErrUnknown  = errors.New("no such message in the queue")
	ErrFinished = errors.New("finished by the delivery in progress before the change took")
)

// Queued reports whether id is a message in the queue.
func (m *Manager) Queued(id string) bool {
	return queue.ValidID(id) && (m.exists(queue.DirTodo, id) || m.exists(queue.DirInfo, id))
}

// Hold keeps message id from being delivered, bounced or expired until
// Release: HoldNote, then HoldConfirm. An administrator's command that
// holds many messages writes every note first, then confirms each, so
// that no message waits for another's delivery in progress to be held.
func (m *Manager) Hold(id string) error {
	if err := m.HoldNote(id); err != nil {
		return err
	}
	return m.HoldConfirm(id)
}

// HoldNote writes message id's hold note, durably: from now on no
// attempt starts delivering it, and one under way stops before its next
// destination. ErrUnknown: not queued.
func (m *Manager) HoldNote(id string) error {
	if !m.Queued(id) {
		return ErrUnknown
	}
	if err := m.Q.SetHold(id, true); err != nil {
		return err
	}
	m.Q.Crash.At("admin-hold-noted")
	return nil
}

// HoldWait bounds how long HoldConfirm waits for a delivery in progress
// (an SMTP destination may take timeoutremote, and a program run by the
// delivery may itself be the one asking for the hold).
var HoldWait = 30 * time.Second

// errStillDelivering is an attempt that still held the lock at HoldWait.
var errStillDelivering = errors.New("still delivering")

// HoldConfirm waits for an attempt of message id in progress to stop
// (after the destination it is delivering to), so that what it says is
// so: "held", or ErrFinished when that attempt finished the message (its
// note is then removed). An attempt still going at HoldWait, or a lock
// that cannot be waited for, leaves the message held, and says so.
func (m *Manager) HoldConfirm(id string) error {
	switch err := m.waitAttempt(id, HoldWait); {
	case errors.Is(err, errStillDelivering):
		m.logf("msg %s held; the delivery in progress stops after its current destination", id)
		return nil
	case err != nil:
		m.logf("msg %s held; warning: cannot wait for a delivery in progress: %v", id, err)
		return nil
	}
	if !m.Queued(id) {
		m.Q.SetHold(id, false)
		return ErrFinished
	}
	m.logf("msg %s held", id)
	return nil
}

// waitAttempt returns once no attempt holds message id's lock (the
// flock that claim takes, on mess/ID or on a single-file todo/ID), once
// the message is gone, or with errStillDelivering after limit.
func (m *Manager) waitAttempt(id string, limit time.Duration) error {
	got := make(chan error, 1) // never blocks the goroutine, even when nobody waits any more
	go func() {
		lock, err := m.lockAny(id)
		if lock != nil {
			lock.Close()
		}
		got <- err
	}()
	select {
	case err := <-got:
		return err
	case <-time.After(limit):
		// The goroutine lets the lock go as soon as it gets it.
		return errStillDelivering
	}
}

// lockAny takes message id's lock, waiting for it: nil and no error
// when the message is gone.
func (m *Manager) lockAny(id string) (*os.File, error) {
	for range 3 { // the message may move from todo/ID to mess/ID meanwhile
		lock, err := m.claim(id, context.Background())
		if errors.Is(err, fs.ErrNotExist) {
			lock, err = lockFile(m.Q.Path(queue.DirTodo, id), context.Background())
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return lock, err
		}
		if !m.Queued(id) {
			return nil, nil
		}
	}
	// info/ID with neither file: damage, which the deliverer sets aside.
	return nil, errors.New("the message's file is missing")
}

// Release undoes Hold; the message is due at once, as with Retry (after
// a hold, whatever back-off it had is stale), and a running daemon
// looks at it at once.
func (m *Manager) Release(id string) error {
	if !m.Queued(id) {
		return ErrUnknown
	}
	if err := m.Q.SetHold(id, false); err != nil {
		return err
	}
	m.logf("msg %s released", id)
	return m.Q.Wake(id)
}

// Retry makes every recipient of message id still to do due now, as a
// flush of this message; a held message stays held.
func (m *Manager) Retry(id string) error {
	if !m.Queued(id) {
		return ErrUnknown
	}
	if m.Q.Held(id) {
		m.logf("msg %s is held: release it to deliver it", id)
	}
	m.logf("msg %s due now", id)
	return m.Q.Wake(id)
}

// Delete removes message id without a bounce, under its lock (waiting
// for an attempt in progress), and logs it. todo/ID goes before info/ID
// (an envelope never comes back once info/ has moved on), the state
// before the message file, as when an attempt finishes a message.
func (m *Manager) Delete(id string) error {
	if !m.Queued(id) {
		return ErrUnknown
	}
	lock, _, err := m.claimMessage(id, context.Background())
	if errors.Is(err, fs.ErrNotExist) {
		if !m.Queued(id) {
			return ErrFinished
		}
		// An envelope whose message file is missing: damage, which the
		// deliverer sets aside; deleting it is what was asked.
	} else if err != nil {
		return err
	} else {
		defer lock.Close()
	}
	sender, n := "", 0
	if data, err := os.ReadFile(m.Q.Path(queue.DirInfo, id)); err == nil {
		if st, err := queue.ParseState(id, data); err == nil {
			sender, n = st.Sender, len(st.Rcpts)
		}
	} else if data, _, err := m.Q.ReadTodo(id); err == nil {
		if st, err := queue.ParseState(id, data); err == nil {
			sender, n = st.Sender, len(st.Rcpts)
		}
	}
	if !m.Queued(id) {
		return ErrFinished // by the attempt we waited for
	}
	for _, d := range []string{queue.DirTodo, queue.DirInfo} {
		if err := safefile.Remove(m.Q.Path(d, id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if err := os.Remove(m.Q.Path(queue.DirMess, id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	m.Q.DropNotes(id)
	m.logf("msg %s deleted by the administrator, not bounced: from <%s> to %d recipient(s)", id, sender, n)
	return nil
}
