package qmanager

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"omail/lib/clock"
	"omail/lib/envelope"
	"omail/lib/outbox"
	"omail/lib/outcome"
	"omail/lib/queue"
	"omail/lib/remote"
	"omail/lib/safefile"
)

// DoubleBounceSender is the envelope sender of a double bounce (a bounce
// of a bounce, sent to doublebounceto). Its own failure is only logged:
// that is where bounce loops end. qmail uses the same convention.
const DoubleBounceSender = "#@[]"

// errBusy means another deliverer holds the message.
var errBusy = errors.New("message busy")

// claim opens the message file and takes an exclusive flock on it. The
// lock is the claim: two deliverers never work on one message at once,
// so no recipient is delivered twice. wait nil returns errBusy at once
// when another deliverer has it; otherwise claim waits for it until wait
// ends (-flush waits for the daemon's attempt, and stops waiting at
// SIGTERM), and returns wait's error then.
func (m *Manager) claim(id string, wait context.Context) (*os.File, error) {
	return lockFile(m.Q.Path(queue.DirMess, id), wait)
}

// lockFile opens path and takes an exclusive flock on it (claim).
func lockFile(path string, wait context.Context) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	err = flock(f, unix.LOCK_EX|unix.LOCK_NB)
	if err == unix.EWOULDBLOCK && wait != nil {
		// A flock that blocks cannot be interrupted, so it waits in a
		// goroutine of its own; if wait ends first, that goroutine lets
		// go of the lock as soon as it gets it.
		got := make(chan error, 1)
		go func() { got <- flock(f, unix.LOCK_EX) }()
		if lockWaiting != nil {
			lockWaiting()
		}
		select {
		case err = <-got:
		case <-wait.Done():
			go func() { <-got; f.Close() }()
			return nil, wait.Err()
		}
	}
	if err == unix.EWOULDBLOCK {
		f.Close()
		return nil, errBusy
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// lockWaiting, when set (tests), is called as a claim starts to wait.
var lockWaiting func()

// flock is flock(2), tried again when a signal interrupts it.
func flock(f *os.File, how int) error {
	for {
		if err := unix.Flock(int(f.Fd()), how); err != unix.EINTR {
			return err
		}
	}
}

// attempt is one pass over one message: every due recipient is tried
// once. It returns the message's next due time and whether it is still in
// the queue. flush makes every Todo recipient due, holdremote included.
func (m *Manager) attempt(ctx context.Context, id string, flush bool) (next int64, open bool, err error) {
	next, open, _, _, err = m.attemptLane(ctx, id, flush)
	return next, open, err
}

// claimMessage is claim for a message that may still be a single-file
// entry in todo/ with no mess/ID: it then locks todo/ID (the same inode)
// and gives it that name under the lock (queue.LinkLocked). made reports
// that this claim made the name: nothing of the message can have been
// delivered before. A missing message is an error for which
// errors.Is(err, fs.ErrNotExist) holds.
func (m *Manager) claimMessage(id string, wait context.Context) (lock *os.File, made bool, err error) {
	lock, err = m.claim(id, wait)
	if !errors.Is(err, fs.ErrNotExist) {
		return lock, false, err
	}
	// A message committed as one file has no mess/ID until a deliverer
	// gives it one (lib/queue/todofile.go).
	if lock, err = lockFile(m.Q.Path(queue.DirTodo, id), wait); err != nil {
		return nil, false, err
	}
	ok, made, err := m.Q.LinkLocked(lock, id)
	if err == nil && !ok {
		err = fs.ErrNotExist
	}
	if err != nil {
		lock.Close()
		return nil, false, err
	}
	return lock, made, nil
}

// attemptLane is attempt, and also reports whether the message belongs
// in the daemon's slow lane (every recipient still to do has been
// deferred slowattempts times or more), and whether holdremote kept some
// of its SMTP recipients for a flush (their due times do not count in
// next).
func (m *Manager) attemptLane(ctx context.Context, id string, flush bool) (next int64, open, slow, kept bool, err error) {
	// A flush waits for a message the daemon is delivering, until the
	// stop (SIGTERM); the daemon goes on to other work.
	var wait context.Context
	if flush {
		wait = ctx
	}
	lock, made, err := m.claimMessage(id, wait)
	if ctx.Err() != nil && (err == nil || errors.Is(err, ctx.Err())) {
		// Stopped while waiting, or before: nothing starts.
		if lock != nil {
			lock.Close()
		}
		return 0, true, false, false, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		// No message file: finished by another deliverer, or an envelope
		// whose message is missing, which is damage.
		if m.exists(queue.DirTodo, id) || m.exists(queue.DirInfo, id) {
			m.setAside(id, "message file missing")
		}
		m.Q.DropNotes(id)
		return 0, false, false, false, nil
	}
	if err != nil {
		return 0, true, false, false, err
	}
	defer lock.Close()

	// The administrator's notes are read under the lock (docs/INTERNALS.md,
	// "Held messages"): a hold written before this point stops the
	// attempt, one written later stops it before its next destination; a
	// wake note (-retry, -release) makes this attempt a flush of the
	// message. The wake note goes as it is read, so that one written
	// during the attempt (a -release while it finds the message held)
	// stays for the next attempt.
	if m.Q.Woken(id) {
		m.Q.DropWake(id)
		flush = true
	}
	if m.Q.Held(id) {
		m.logf("msg %s is held: not delivered", id)
		return Never, true, false, false, nil
	}

	// The state is in info/ once an attempt has written it; before that,
	// it is the envelope committed to todo/. A single-file entry is
	// delivered from inside todo/ID, its message the first msgLen bytes,
	// and goes to info/ only when an attempt leaves something to
	// remember (docs/INTERNALS.md, "Delivering from todo/").
	dir := queue.DirInfo
	msgLen := int64(-1) // of a single-file entry read from todo/
	data, err := os.ReadFile(m.Q.Path(queue.DirInfo, id))
	if errors.Is(err, fs.ErrNotExist) {
		dir = queue.DirTodo
		if made {
			// The lock is todo/ID itself: no need to open it again.
			data, msgLen, err = queue.ReadTodoFile(lock)
		} else {
			data, msgLen, err = m.Q.ReadTodo(id)
		}
		if errors.Is(err, fs.ErrNotExist) {
			return 0, false, false, false, nil // finished meanwhile
		}
	}
	if errors.Is(err, queue.ErrCorrupt) {
		m.setAside(id, err.Error())
		return 0, false, false, false, nil
	}
	if err != nil {
		return 0, true, false, false, err
	}
	st, err := queue.ParseState(id, data)
	if err != nil {
		m.setAside(id, err.Error())
		return 0, false, false, false, nil
	}
	if dir == queue.DirInfo && m.exists(queue.DirTodo, id) {
		// A crash came between writing info/ and removing todo/: info/
		// is the newer. Only once it has parsed: a damaged info/ is set
		// aside above with the todo/ entry, which is never deleted.
		if err := safefile.Remove(m.Q.Path(queue.DirTodo, id)); err != nil {
			return 0, true, false, false, err
		}
	}
	st.Dir = dir
	if msgLen >= 0 {
		st.MessageLen = msgLen // written with the state if it goes to info/
	} else if err = m.Q.Trim(lock, st); err != nil {
		// The state in info/ records the length: finish a cut a crash
		// interrupted before anything reads the file.
		if errors.Is(err, queue.ErrCorrupt) {
			m.setAside(id, err.Error())
			return 0, false, false, false, nil
		}
		return 0, true, false, false, err
	}
	if hasFailed(st) {
		// Failed recipients on disk are a bounce an earlier attempt did
		// not record as queued (a crash, or a queueing error): bounce
		// exactly them before anything else can fail, so the repeat
		// names the same set, and so the same bounce (bounce.go).
		if err := m.bounceFailed(st); err != nil {
			m.logf("warning: cannot queue a bounce for msg %s: %v", id, err)
		}
	}
	if st.Rcpts[0].Attempts == 0 && allTodo(st) {
		m.logf("new msg %s from <%s> to %d recipient(s)", id, st.Sender, len(st.Rcpts))
	}

	// ctx is the daemon's stop (SIGTERM): it stops the attempt before its
	// next destination, and an SMTP delivery before its next connection
	// (remote.WithStop), never a delivery in progress. A delivery cut off
	// mid-way (an SMTP session after its DATA, a program that has done
	// its work) is a deferral that sends the message again; each is
	// bounded by its own timeouts instead (timeoutconnect, timeoutremote),
	// or ended by the hard stop (m.Hard, a second signal).
	stop := ctx
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	if m.Hard != nil {
		defer context.AfterFunc(m.Hard, cancel)()
	}
	ctx = remote.WithStop(firstAttempt(ctx, made && dir == queue.DirTodo), stop)
	msgPath := m.Q.Path(queue.DirMess, id)
	now := clock.Now(m.Now)
	if st.Queued > now.Unix() {
		// Queued while the clock ran ahead (set back since): the message
		// has waited nothing yet. Its queued time becomes now and is saved
		// with the state this attempt writes, so queuelifetime (and a
		// bounce's Arrival-Date) counts from the first attempt after the
		// step.
		st.Queued = now.Unix()
	}
	lifetime := m.cfg().queueLifetime
	hold := m.cfg().holdRemote && !flush
	held := map[int]bool{} // SMTP recipients waiting for a flush
	// Group the due recipients by route, so that one delivery carries
	// all the recipients that can travel together.
	groups := map[string][]int{}
	var order []string
	var forwards []string // derived ids queued, until the state records them
	routes := map[string]Route{}
	unrouted := false // a routing failure was recorded, to be saved
	for i, r := range st.Rcpts {
		if r.Status != queue.Todo {
			continue
		}
		rt, err := m.router().Route(r.Addr)
		if err != nil {
			if flush || dueAt(r.NextTry, now.Unix()) <= now.Unix() {
				res := outcome.Result{Status: outcome.Temp, Text: "routing: " + err.Error()}
				if errors.Is(err, outbox.ErrBadEndpoint) {
					// %u made an endpoint no directory may have: no
					// amount of waiting fixes that.
					res = outcome.Result{Status: outcome.Perm, Text: "5.1.3 " + err.Error()}
				}
				m.result(st, i, res, lifetime)
				unrouted = true
			}
			continue
		}
		if rt.Kind == RouteSMTP && hold {
			held[i] = true // the dial-up "expensive mailer": waits for a flush
			continue
		}
		if !flush && dueAt(r.NextTry, now.Unix()) > now.Unix() {
			continue
		}
		k := rt.Key(r.Addr)
		if _, seen := groups[k]; !seen {
			order = append(order, k)
		}
		groups[k] = append(groups[k], i)
		routes[k] = rt
	}
	if msgLen >= 0 && !m.inPlace(lock, routes) {
		// Take the entry apart first, as every attempt did before the
		// first could be delivered from todo/ID: the state to info/ with
		// the length, todo/ID removed, the file cut back (queue.Unfold).
		if err := m.Q.Unfold(lock, st, msgLen); errors.Is(err, queue.ErrCorrupt) {
			m.setAside(id, err.Error())
			return 0, false, false, false, nil
		} else if err != nil {
			return 0, true, false, false, err
		}
		msgLen = -1
	}
	heldNow := false
	for gi, k := range order {
		if gi > 0 && m.Q.Held(id) {
			// Held meanwhile: the destinations after the one just
			// finished wait for the release; the state is saved.
			m.logf("msg %s is held: the rest waits", id)
			heldNow = true
			break
		}
		if gi > 0 && stop.Err() != nil {
			// Stopping: the destinations after the one just finished
			// wait for the next start; the state is saved.
			m.logf("msg %s: stopping: the rest waits", id)
			break
		}
		idx := groups[k]
		rt := routes[k]
		dctx := ctx
		if rt.Kind == RouteSMTP && m.slowGroup(st, idx) {
			// Old deferred mail shares the slow lane's few connections
			// (concurrencyslow), so a backlog of dead destinations never
			// takes the slots fresh mail needs.
			dctx = remote.WithSlowLane(ctx)
		}
		results := m.deliver(dctx, rt, id, msgPath, msgLen, st, idx)
		for j, i := range idx {
			res := results[j]
			if res.Status == outcome.OK && len(res.Forward) > 0 {
				fid, err := m.forward(msgPath, st, i, res.Prefix, res.Forward)
				if err != nil {
					res = outcome.Result{Status: outcome.Temp, Text: "forwarding: " + err.Error()}
				} else {
					forwards = append(forwards, fid)
				}
			}
			m.result(st, i, res, lifetime)
		}
		// Write down each group's outcome before the next group, so that
		// a crash repeats at most the group in flight. When nothing is left
		// to do, finishing is the record: no state write is needed.
		if !st.Open() {
			break
		}
		if err := m.saveState(st); err != nil {
			return 0, true, false, false, err
		}
		m.forget(forwards, "forward-recorded")
		forwards = forwards[:0]
	}
	if unrouted && len(order) == 0 {
		if err := m.saveState(st); err != nil {
			return 0, true, false, false, err
		}
	}
	if err := m.bounceFailed(st); err != nil {
		m.logf("warning: cannot queue a bounce for msg %s: %v", id, err)
	}
	if msgLen >= 0 && st.Dir == queue.DirInfo && st.Open() {
		// The state went to info/ with the length (a deferral, a
		// bounce): cut the file back to the message, as Unfold would.
		if err := m.Q.Trim(lock, st); err != nil {
			return 0, true, false, false, err
		}
	}
	if !st.Open() {
		if err := m.finish(st); err != nil {
			return 0, true, false, false, err
		}
		m.forget(forwards, "forward-recorded")
		return 0, false, false, false, nil
	}
	// The next due time counts only recipients not held for a flush (and
	// none of a message held meanwhile: the release wakes it).
	next = Never
	for i, r := range st.Rcpts {
		if r.Status == queue.Todo && !held[i] && !heldNow && r.NextTry < next {
			next = r.NextTry
		}
	}
	if next == Never && hasFailed(st) {
		next = now.Unix() + 60 // a bounce could not be queued: try again soon
	}
	kept = len(held) > 0 && !heldNow
	return next, true, m.slow(st), kept, nil
}

// slowGroup reports whether every recipient of a group has been
// deferred slowattempts times or more.
func (m *Manager) slowGroup(st *queue.State, idx []int) bool {
	n := m.cfg().slowAttempts
	if n <= 0 {
		return false
	}
	for _, i := range idx {
		if st.Rcpts[i].Attempts < n {
			return false
		}
	}
	return true
}

// slow reports whether every Todo recipient has been deferred
// slowattempts times or more (0 turns the slow lane off).
func (m *Manager) slow(st *queue.State) bool {
	n := m.cfg().slowAttempts
	if n <= 0 {
		return false
	}
	for _, r := range st.Rcpts {
		if r.Status == queue.Todo && r.Attempts < n {
			return false
		}
	}
	return true
}

// Never is the due time of a message that waits for a flush.
const Never = int64(1) << 62

func hasFailed(st *queue.State) bool {
	for _, r := range st.Rcpts {
		if r.Status == queue.Failed {
			return true
		}
	}
	return false
}

func allTodo(st *queue.State) bool {
	for _, r := range st.Rcpts {
		if r.Status != queue.Todo || r.Attempts != 0 {
			return false
		}
	}
	return true
}

// inPlace reports whether this attempt may deliver a single-file entry
// from inside todo/ID, its message the first msgLen bytes of the file:
// when every group goes to the local transport, which can be told the
// length (Transports.LocalPart; the others read the file whole), and the
// file has no name but todo/ID and mess/ID. A third name is a derived
// message's intent in tmp/ (lib/queue/derived.go), which tells a retry of
// its original that it was delivered by the file being cut back to the
// message; such a message is taken apart first, as before.
func (m *Manager) inPlace(lock *os.File, routes map[string]Route) bool {
	if m.T.LocalPart == nil {
		return false
	}
	for _, rt := range routes {
		if rt.Kind != RouteLocal {
			return false
		}
	}
	var s unix.Stat_t
	return unix.Fstat(int(lock.Fd()), &s) == nil && s.Nlink == 2
}

// messageSize is the length of the message in its file of size bytes:
// the length the state records while the file still carries the
// envelope after it (delivered from todo/, or a cut a crash
// interrupted), else the whole file.
func messageSize(st *queue.State, size int64) int64 {
	if st.MessageLen > 0 && st.MessageLen < size {
		return st.MessageLen
	}
	return size
}

// deliver runs one group of recipients through its transport. msgLen >= 0
// says the message is that many bytes at the start of msgPath, which
// goes on with its envelope (inPlace).
func (m *Manager) deliver(ctx context.Context, rt Route, id, msgPath string, msgLen int64, st *queue.State, idx []int) []outcome.Result {
	rcpts := make([]string, len(idx))
	for j, i := range idx {
		rcpts[j] = st.Rcpts[i].Addr
	}
	out := make([]outcome.Result, len(idx))
	switch rt.Kind {
	case RouteLocal:
		for j, r := range rcpts {
			switch {
			case msgLen >= 0 && m.T.LocalPart != nil:
				out[j] = m.T.LocalPart(ctx, msgPath, msgLen, st.Sender, r)
			case msgLen < 0 && m.T.Local != nil:
				out[j] = m.T.Local(ctx, msgPath, st.Sender, r)
			default:
				out[j] = outcome.Result{Status: outcome.Temp, Text: "local delivery is not available"}
			}
		}
	case RouteOCMP:
		res := outcome.Result{Status: outcome.Temp, Text: "OCMP delivery is not available"}
		if m.T.OCMP != nil {
			res = m.T.OCMP(ctx, rt.Endpoint, id, msgPath, st.Sender, rcpts)
		}
		for j := range out {
			out[j] = res
		}
	case RouteSMTP:
		if m.T.Remote == nil {
			for j := range out {
				out[j] = outcome.Result{Status: outcome.Temp, Text: "remote delivery is not available yet; kept in the queue"}
			}
			break
		}
		res := m.T.Remote(ctx, rt.Dest, msgPath, st.Sender, rcpts)
		for j := range out {
			if j < len(res) {
				out[j] = res[j]
			} else {
				out[j] = outcome.Result{Status: outcome.Temp, Text: "no result from remote delivery"}
			}
		}
	}
	return out
}

// result records one result for st's recipient i (record) and logs it,
// at the time it came: the back-off and the expiry count from the
// failure, not from the start of an attempt whose deliveries took long
// (an SMTP server that answers slowly). The text becomes one line of at most what the state file keeps
// (errorText), so that the bounce, the log and the state after a restart
// all say the same: a transport's text may be a server's multi-line
// reply, joined, of any length, with control characters.
func (m *Manager) result(st *queue.State, i int, res outcome.Result, lifetime time.Duration) {
	res.Text = errorText(res.Text)
	m.record(st, i, res, clock.Now(m.Now), lifetime)
	m.logDelivery(st.ID, st.Rcpts[i], res)
}

// errorText is s as the state file keeps it: one line of printable
// characters, at most queue.MaxErrorText bytes, "..." included.
func errorText(s string) string { return outcome.Cut(s, queue.MaxErrorText) }

// record applies one result to a recipient's state: the one place where
// a delivery outcome becomes a stored queue status. Only outcome.OK is
// Done and only outcome.Perm is Failed; anything else, the zero Result
// included, is a deferral.
func (m *Manager) record(st *queue.State, i int, res outcome.Result, now time.Time, lifetime time.Duration) {
	r := &st.Rcpts[i]
	switch res.Status {
	case outcome.OK:
		r.Status, r.LastError = queue.Done, ""
	case outcome.Perm:
		r.Status, r.LastError = queue.Failed, res.Text
	default: // outcome.Temp, the zero value, and anything unknown
		r.Attempts++
		r.LastError = res.Text
		// The attempt moved a queued time in the future back to its start;
		// a clock set back during the attempt counts as no wait.
		if now.Sub(time.Unix(min(st.Queued, now.Unix()), 0)) >= lifetime {
			r.Status = queue.Failed
			r.LastError = errorText(fmt.Sprintf("message expired after %s in the queue; last error: %s", lifetime, res.Text))
			return
		}
		r.NextTry = now.Add(Backoff(r.Attempts)).Unix()
	}
}

// Backoff is the wait after the n-th failed attempt: one minute, doubling,
// at most MaxBackoff. An intermittent link does not need a fine
// schedule: a flush when the link comes up does the real work.
func Backoff(n int) time.Duration {
	d := time.Minute
	for i := 1; i < n && d < MaxBackoff; i++ {
		d *= 2
	}
	return min(d, MaxBackoff)
}

// MaxBackoff is the longest wait between two tries of a recipient.
const MaxBackoff = queue.MaxBackoff

// dueAt is queue.DueAt, the time a recipient or message due at due is
// tried, seen at now (a due time further ahead than MaxBackoff, which only
// a clock set back makes, is now), the rule mailq shows too. Never stays
// Never.
func dueAt(due, now int64) int64 {
	if due == Never {
		return Never
	}
	return queue.DueAt(due, now)
}

// forward queues a copy of the message to new recipients, with the same
// sender, as qmail does for forwards and aliases, behind the prefix lines:
// the forward of st's recipient i, exactly once (queue.BeginDerived). An
// earlier attempt that queued it and crashed before its state recorded
// the delivery makes this one a success that queues nothing.
func (m *Manager) forward(msgPath string, st *queue.State, i int, prefix, rcpts []string) (string, error) {
	id := queue.DeriveID(st.ID, "forward "+strconv.Itoa(i)+" "+st.Rcpts[i].Addr)
	p, err := m.Q.BeginDerived(id)
	if errors.Is(err, queue.ErrQueued) {
		m.logf("forward msg %s to %d recipient(s) was queued already", id, len(rcpts))
		m.Q.Notify()
		return id, nil
	}
	if err != nil {
		return "", err
	}
	defer p.Abort()
	f, err := os.Open(msgPath)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	var head strings.Builder
	for _, l := range prefix {
		head.WriteString(strings.TrimRight(l, "\n") + "\n")
	}
	if _, err := io.Copy(p, io.MultiReader(strings.NewReader(head.String()), io.NewSectionReader(f, 0, messageSize(st, fi.Size())))); err != nil {
		return "", err
	}
	_, err = p.Commit(&envelope.Envelope{Sender: st.Sender, Rcpts: rcpts})
	if err != nil && !errors.Is(err, queue.ErrQueued) {
		return "", err
	}
	m.logf("forwarded as msg %s to %d recipient(s)", id, len(rcpts))
	m.Q.Notify()
	return id, nil
}

// forget drops the intents of derived messages (queue.Forget) once the
// state that records them is durable; point is the crash point before.
func (m *Manager) forget(ids []string, point string) {
	if len(ids) == 0 {
		return
	}
	m.Q.Crash.At(point)
	for _, id := range ids {
		m.Q.Forget(id)
	}
}

// saveState writes the state durably to info/, and then, the first
// time, removes the envelope from todo/.
func (m *Manager) saveState(st *queue.State) error { return m.Q.SaveState(st) }

// finish removes a message all of whose recipients are done or bounced:
// the envelope first (the commit point of "finished"), then the body.
func (m *Manager) finish(st *queue.State) error {
	id := st.ID
	m.Q.Crash.At("queue-finish")
	// A failure leaves the message's state: the next attempt finishes it.
	// One delivered from todo/ has no delivery recorded there, but its
	// mess/ name makes that attempt search the mailboxes first and find
	// the copy (once.go).
	err := m.Q.Crash.Op("queue-finish-unlink-state", func() error { return safefile.Remove(m.Q.Path(st.Dir, id)) })
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	// Finished: a mess/ file left here is an orphan, which cleanup
	// removes once it is OrphanAge old.
	err = m.Q.Crash.Op("queue-finish-unlink-mess", func() error { return os.Remove(m.Q.Path(queue.DirMess, id)) })
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	m.Q.DropNotes(id)
	m.logf("end msg %s", id)
	return nil
}

func (m *Manager) exists(dir, id string) bool {
	_, err := os.Lstat(m.Q.Path(dir, id))
	return err == nil
}

// setAside moves a damaged message's files into corrupt/ for a person to
// look at. Nothing is deleted.
func (m *Manager) setAside(id, why string) {
	for _, d := range []string{queue.DirTodo, queue.DirInfo, queue.DirMess} {
		p := m.Q.Path(d, id)
		if _, err := os.Lstat(p); err == nil {
			safefile.Rename(p, m.Q.Path(queue.DirCorrupt, id+"."+d))
		}
	}
	m.Q.DropNotes(id)
	m.logf("warning: msg %s set aside in corrupt/: %s", id, why)
}

func (m *Manager) logDelivery(id string, r queue.Rcpt, res outcome.Result) {
	word := "deferral"
	switch {
	case res.Status == outcome.OK:
		word = "success"
	case res.Status == outcome.Perm:
		word = "failure"
	case r.Status == queue.Failed: // a deferral past queuelifetime
		word = "failure"
		res.Text = r.LastError
	}
	m.logf("delivery msg %s to <%s>: %s: %s", id, r.Addr, word, res.Text)
}
