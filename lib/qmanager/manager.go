// Package qmanager is omail's queue manager: it takes committed messages
// from todo/, delivers each recipient through the transport its route
// names, records per-recipient state durably, retries with back-off,
// bounces what fails, and removes what is finished. docs/INTERNALS.md
// describes the states and the commit points this code keeps.
package qmanager

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"omail/lib/clock"
	"omail/lib/control"
	"omail/lib/queue"
)

// Manager delivers the messages of one queue.
type Manager struct {
	Q   *queue.Queue
	Ctl *control.Dir
	T   Transports
	Now func() time.Time // nil: the real clock (lib/clock)
	Log io.Writer
	// Home is OMAIL_HOME, where the OCMP outbox is; "" means the
	// directory above the queue.
	Home string
	// Hard ends the deliveries in progress (omail-deliver's second
	// SIGTERM): a program is killed, an SMTP session cut off, each a
	// deferral. nil: never. The context Run and Flush are given (the
	// first signal) only stops new work.
	Hard context.Context

	// Test hooks of the start-up scan: batch size, and a call before each
	// batch is handed over, with the number of state files read so far.
	scanBatch int
	scanHook  func(read int)

	mu   sync.Mutex
	conf *config
	rtr  *Router
	logm sync.Mutex

	// warned is when the outbox sweep last warned about an endpoint's
	// missing upload directory (daily, outbox.go).
	warned map[string]time.Time
}

type config struct {
	me             string
	holdRemote     bool
	queueLifetime  time.Duration
	concurrency    int
	bounceFrom     string
	doubleBounceTo string
	slowAttempts   int           // deferrals that put a message in the slow lane
	outboxLifetime time.Duration // how long an OCMP outbox entry may wait
}

// Load reads the control files the manager needs. Call it before work and
// again to reread them (SIGHUP).
func (m *Manager) Load() error {
	me, err := m.Ctl.Me()
	if err != nil {
		return err
	}
	c := &config{me: me}
	if c.holdRemote, err = m.Ctl.Bool("holdremote"); err != nil {
		return err
	}
	n, err := m.Ctl.Int("queuelifetime")
	if err != nil {
		return err
	}
	c.queueLifetime = time.Duration(n) * time.Second
	if n, err = m.Ctl.Int("concurrencylocal"); err != nil {
		return err
	}
	c.concurrency = int(max(1, min(n, 1000)))
	if n, err = m.Ctl.Int("slowattempts"); err != nil {
		return err
	}
	c.slowAttempts = int(max(0, min(n, 1<<20)))
	if n, err = m.Ctl.Int("outboxlifetime"); err != nil {
		return err
	}
	c.outboxLifetime = time.Duration(max(0, min(n, 1<<40))) * time.Second
	bf, err := m.Ctl.Line("bouncefrom")
	if err != nil {
		return err
	}
	bh, err := m.Ctl.Line("bouncehost")
	if err != nil {
		return err
	}
	c.bounceFrom = bf + "@" + bh
	dt, err := m.Ctl.Line("doublebounceto")
	if err != nil {
		return err
	}
	dh, err := m.Ctl.Line("doublebouncehost")
	if err != nil {
		return err
	}
	c.doubleBounceTo = dt + "@" + dh
	r, err := NewRouter(m.Ctl)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.conf, m.rtr = c, r
	m.mu.Unlock()
	return nil
}

// reload is SIGHUP: the manager's control files, then the transports'.
// Whatever cannot be read keeps its old value, and the log says so.
func (m *Manager) reload() {
	if err := m.Load(); err != nil {
		m.logf("warning: control files not reread, keeping the old ones: %v", err)
		return
	}
	if m.T.Reload != nil {
		if err := m.T.Reload(); err != nil {
			m.logf("warning: control files reread but the SMTP client's (helohost, timeouts, masquerade, dkimkeys), which keeps the old ones: %v", err)
			return
		}
	}
	m.logf("control files reread")
}

func (m *Manager) cfg() *config {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.conf
}

func (m *Manager) router() *Router {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rtr
}

func (m *Manager) logf(format string, a ...any) {
	if m.Log == nil {
		return
	}
	m.logm.Lock()
	defer m.logm.Unlock()
	fmt.Fprintf(m.Log, format+"\n", a...)
}

// Flush makes one delivery pass over every message in the queue now,
// waiting for messages another deliverer holds, and returns when done.
// When ctx is cancelled (SIGTERM) it starts no new attempt, lets those in
// progress finish, and returns ctx's error.
func (m *Manager) Flush(ctx context.Context) error {
	ids, err := m.Q.AllIDs()
	if err != nil {
		return err
	}
	m.cleanup(ids)
	work := make(chan string)
	var wg sync.WaitGroup
	var firstErr error
	var errMu sync.Mutex
	for w := 0; w < m.cfg().concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range work {
				if _, _, err := m.attempt(ctx, id, true); err != nil {
					m.logf("warning: msg %s: %v", id, err)
					errMu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					errMu.Unlock()
				}
			}
		}()
	}
feed:
	for _, id := range ids {
		if ctx.Err() != nil {
			break
		}
		select {
		case work <- id:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if ctx.Err() != nil {
		return fmt.Errorf("stopped: %w", ctx.Err())
	}
	// After the pass, so that what it put in the outbox is counted.
	m.sweepOutbox()
	m.sweepDRAC()
	return firstErr
}

// OrphanAge is how old a message file without an envelope, or a file in
// tmp/, must be before it is removed: far longer than any omail-queue
// run (its own timeout is a day).
const OrphanAge = 36 * time.Hour

// cleanup removes what crashed writers left: files in tmp/, message
// files that never got an envelope, and the temporary files of state
// writes in info/ (safefile: "." and the id, then random digits, never
// renamed into place), once they are older than OrphanAge.
// known are sorted lists (queue.SortIDs) of ids just seen in todo/ or
// info/: their message files are not looked at.
func (m *Manager) cleanup(known ...[]string) {
	// File times are the real clock's, whatever clock the schedule runs on.
	cutoff := time.Now().Add(-OrphanAge)
	isKnown := func(id string) bool {
		for _, ids := range known {
			i := sort.Search(len(ids), func(i int) bool { return !queue.IDLess(ids[i], id) })
			if i < len(ids) && ids[i] == id {
				return true
			}
		}
		return false
	}
	for _, dir := range []string{queue.DirTmp, queue.DirMess, queue.DirInfo} {
		names, err := m.Q.Names(dir)
		if err != nil {
			continue
		}
		for _, name := range names {
			if dir == queue.DirMess && isKnown(name) {
				continue
			}
			if dir == queue.DirInfo && !strings.HasPrefix(name, ".") {
				continue // states: never orphans
			}
			p := m.Q.Path(dir, name)
			fi, err := os.Lstat(p)
			if err != nil || fi.ModTime().After(cutoff) {
				continue
			}
			if dir == queue.DirMess && !m.removeOrphan(name) {
				continue
			}
			if dir != queue.DirMess && os.Remove(p) != nil {
				continue
			}
			m.logf("removed %s/%s left by a crash", dir, name)
		}
	}
}

// removeOrphan removes a message file that has no envelope, under the
// message's lock, so never one a deliverer is finishing or setting aside.
func (m *Manager) removeOrphan(id string) bool {
	lock, err := m.claim(id, nil)
	if err != nil {
		return false
	}
	defer lock.Close()
	if m.exists(queue.DirTodo, id) || m.exists(queue.DirInfo, id) {
		return false
	}
	return os.Remove(m.Q.Path(queue.DirMess, id)) == nil
}

// item is a message waiting in the daemon's schedule.
type item struct {
	id    string
	due   int64
	seq   uint64 // order of arrival in the schedule, among equal due times
	flush bool   // SIGALRM: deliver held recipients too
	slow  bool   // in the slow lane (attemptLane)
}

type schedule []item

func (s schedule) Len() int { return len(s) }
func (s schedule) Less(i, j int) bool {
	return s[i].due < s[j].due || s[i].due == s[j].due && s[i].seq < s[j].seq
}
func (s schedule) Swap(i, j int) { s[i], s[j] = s[j], s[i] }
func (s *schedule) Push(x any)   { *s = append(*s, x.(item)) }
func (s *schedule) Pop() any {
	old := *s
	it := old[len(old)-1]
	*s = old[:len(old)-1]
	return it
}

// Signals are what the daemon reacts to, as channels so tests can drive
// them without sending real signals.
type Signals struct {
	New    <-chan struct{} // the trigger fifo was written: look in todo/ and wake/
	Alarm  <-chan struct{} // SIGALRM: everything is due now
	Reload <-chan struct{} // SIGHUP: reread control files
}

// scanBatch is how many messages the start-up scan hands to the schedule
// at a time.
const scanBatch = 256

// SweepInterval is how often the daemon looks over the OCMP outbox for
// expired entries and missing upload directories (outbox.go).
const SweepInterval = time.Hour

// Lanes of the schedule: messages whose every recipient to do has been
// deferred slowattempts times or more wait in their own heap and run in
// their own concurrency slots, so a backlog of old deferred mail never
// holds the slots of fresh mail (the remote Limiter bounds their
// connections the same way).
const (
	fastLane = 0
	slowLane = 1
)

func laneOf(slow bool) int {
	if slow {
		return slowLane
	}
	return fastLane
}

// Run is the daemon: it keeps a schedule of every message in memory (a
// heap of due times per lane) and looks into todo/ only at start and when
// the trigger fifo says there is something new. The state files in info/
// are read once, by a scan at start that runs beside the deliveries and
// feeds the schedule as it goes: new mail, and what the scan has found
// due, is delivered while a big queue is still being read. After that a
// state file is read only by the attempts. The administrator's wake notes
// (omail-deliver -release, -retry) are read with todo/ and make their
// message due at once. Run returns when ctx is cancelled, after the
// deliveries in progress have finished.
func (m *Manager) Run(ctx context.Context, sig Signals) (runErr error) {
	var lanes [2]schedule
	var seq uint64
	queued := map[string]bool{} // in a lane or being delivered
	rewake := map[string]bool{} // woken while being delivered
	// Being delivered, and whether a SIGALRM came meanwhile: the attempt
	// may have started before it (holdremote kept its SMTP recipients),
	// so the message is flushed again when the attempt is done.
	delivering := map[string]bool{}
	alarmed := false // a SIGALRM came while the scan ran
	// Messages whose SMTP recipients holdremote keeps for a flush: due
	// when SIGHUP turns holdremote off (release).
	kept := map[string]bool{}
	// Due times further ahead than the longest back-off (a clock set
	// back: the scan's, an attempt's) are due now (dueAt).
	push := func(id string, due int64, flush, slow bool) {
		seq++
		due = dueAt(due, clock.Now(m.Now).Unix())
		heap.Push(&lanes[laneOf(slow)], item{id: id, due: due, seq: seq, flush: flush, slow: slow})
		queued[id] = true
	}
	// wake makes a queued message due now, as a flush.
	wake := func(id string) {
		for l := range lanes {
			for i := range lanes[l] {
				if lanes[l][i].id == id {
					lanes[l][i].due = 0
					lanes[l][i].flush = true
					heap.Fix(&lanes[l], i)
					return
				}
			}
		}
		rewake[id] = true // being delivered: again when it is done
	}
	pickUpNew := func() []string {
		todo, err := m.Q.IDs(queue.DirTodo)
		if err != nil {
			m.logf("warning: cannot read todo/: %v", err)
		}
		for _, id := range todo {
			if !queued[id] {
				push(id, 0, false, false)
			}
		}
		woken, err := m.Q.Wakes()
		if err != nil {
			m.logf("warning: cannot read wake/: %v", err)
		}
		queue.SortIDs(woken)
		for _, id := range woken {
			if !m.Q.Woken(id) {
				continue // taken by an attempt meanwhile
			}
			m.logf("msg %s due now at the administrator's request", id)
			if queued[id] {
				wake(id)
			} else {
				push(id, 0, true, false)
			}
		}
		return todo
	}
	// A wake-up from the trigger fifo is acted on at once, unless listing
	// todo/ would take more than a tenth of the loop's time: while mail
	// arrives faster than it is delivered, todo/ grows, each listing
	// costs more, and listing at every wake-up would leave the loop no
	// time to start deliveries (measured: 100 deliveries a second while
	// 200 sessions were accepting, 1,200 once they stopped). A message
	// found later joins the end of the schedule it would have joined
	// anyway.
	newMail := false        // a wake-up not yet acted on
	var listAfter time.Time // the next listing, at the earliest
	listNew := func() {
		start := time.Now()
		pickUpNew()
		listAfter = time.Now().Add(9 * time.Since(start))
		newMail = false
	}
	// todo/ is listed before the scan lists info/: a message another
	// deliverer moves from one to the other meanwhile is in one of them.
	todo := pickUpNew()
	found := make(chan []item)
	var scanErr error
	scanCtx, stopScan := context.WithCancel(ctx)
	go func() {
		scanErr = m.scan(scanCtx, found, todo)
		close(found)
	}()
	defer func() {
		stopScan()
		if found != nil {
			for range found { // until the scan has stopped
			}
		}
	}()

	type done struct {
		id   string
		next int64
		open bool
		slow bool
		kept bool
		lane int
		err  error
	}
	results := make(chan done)
	var running [2]int
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	stopping := false
	ctxDone := ctx.Done()
	busyRetry := int64(60)
	// The outbox sweep runs beside the deliveries, one at a time.
	sweepDone := make(chan struct{})
	sweeping := false
	nextSweep := int64(0)
	lastNow := int64(0) // the clock at the last turn: one set back is seen

	for {
		if newMail && !time.Now().Before(listAfter) {
			listNew()
		}
		// Each lane's slots, read each time: SIGHUP rereads
		// concurrencylocal. Beyond a lowered limit, the deliveries in
		// progress finish and no new one starts until enough have.
		limit := m.cfg().concurrency
		now := clock.Now(m.Now).Unix()
		if now < lastNow {
			// The clock went back: what is due further ahead than the
			// longest back-off is due now, and the sweep no later than
			// its interval, so the step never adds to a wait.
			for l := range lanes {
				for i := range lanes[l] {
					lanes[l][i].due = dueAt(lanes[l][i].due, now)
				}
				heap.Init(&lanes[l])
			}
			if nextSweep > now+int64(SweepInterval/time.Second) {
				nextSweep = now
			}
		}
		lastNow = now
		if !stopping && !sweeping && now >= nextSweep {
			sweeping, nextSweep = true, now+int64(SweepInterval/time.Second)
			go func() {
				m.sweepOutbox()
				m.sweepDRAC()
				sweepDone <- struct{}{}
			}()
		}
		// Start what is due, as far as each lane's concurrency allows.
		for l := range lanes {
			for !stopping && running[l] < limit && lanes[l].Len() > 0 && lanes[l][0].due <= now {
				it := heap.Pop(&lanes[l]).(item)
				running[l]++
				delivering[it.id] = false
				go func(it item, l int) {
					next, open, slow, kept, err := m.attemptLane(ctx, it.id, it.flush)
					results <- done{it.id, next, open, slow, kept, l, err}
				}(it, l)
			}
		}
		if stopping && running[fastLane]+running[slowLane] == 0 && !sweeping {
			return runErr
		}
		wait := time.Hour
		for l := range lanes {
			if lanes[l].Len() > 0 && running[l] < limit {
				secs := max(0, min(lanes[l][0].due-now, 3600)) // due may be Never
				wait = min(wait, time.Duration(secs)*time.Second)
			}
		}
		if !sweeping {
			wait = min(wait, time.Duration(max(0, nextSweep-now))*time.Second)
		}
		if newMail {
			wait = min(wait, max(0, time.Until(listAfter)))
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)

		select {
		case <-ctxDone:
			stopping, ctxDone = true, nil
		case <-sweepDone:
			sweeping = false
		case b, ok := <-found:
			if !ok {
				found = nil
				if scanErr != nil {
					// As when the queue cannot be read at start: exit
					// (after the deliveries in progress), for supervise
					// to start us again.
					runErr, stopping, ctxDone = scanErr, true, nil
				}
				break
			}
			for _, it := range b {
				if !queued[it.id] {
					if alarmed {
						it.due, it.flush = 0, true
					}
					push(it.id, it.due, it.flush, it.slow)
				}
			}
		case r := <-results:
			running[r.lane]--
			delete(queued, r.id)
			again := rewake[r.id] // and not acted on by that attempt
			delete(rewake, r.id)
			alarmedMeanwhile := delivering[r.id]
			delete(delivering, r.id)
			delete(kept, r.id)
			if r.err == nil && r.open && r.kept {
				kept[r.id] = true
				if !m.cfg().holdRemote {
					// Turned off during the attempt: due now.
					r.next = 0
				}
			}
			switch {
			case errors.Is(r.err, errBusy):
				// A flush holds it; look again a little later.
				push(r.id, clock.Now(m.Now).Unix()+busyRetry, false, r.lane == slowLane)
			case r.err != nil:
				m.logf("warning: msg %s: %v", r.id, r.err)
				push(r.id, clock.Now(m.Now).Unix()+busyRetry, false, r.lane == slowLane)
			case r.open && (again && m.Q.Woken(r.id) || alarmedMeanwhile):
				push(r.id, 0, true, r.slow)
			case r.open:
				push(r.id, r.next, false, r.slow)
			}
		case <-sig.New:
			newMail = true
		case <-sig.Alarm:
			if m.T.Retry != nil {
				m.T.Retry()
			}
			for l := range lanes {
				for i := range lanes[l] {
					lanes[l][i].due, lanes[l][i].flush = 0, true
				}
				heap.Init(&lanes[l])
			}
			for id := range delivering {
				delivering[id] = true
			}
			// What the scan has still to hand over is due now too.
			alarmed = found != nil
		case <-sig.Reload:
			holding := m.cfg().holdRemote
			m.reload()
			if holding && !m.cfg().holdRemote {
				// holdremote turned off: the SMTP mail it kept is due
				// now, as ordinary mail (not a flush: recipients
				// deferred keep their back-off).
				for l := range lanes {
					for i := range lanes[l] {
						if kept[lanes[l][i].id] {
							lanes[l][i].due = 0
						}
					}
					heap.Init(&lanes[l])
				}
			}
		case <-timer.C:
		}
	}
}

// scan is the daemon's start-up scan: it reads the due time of every
// message in info/ and hands them to the schedule in batches on found,
// which its caller closes when it returns; then it removes what crashes left (todo
// holds the ids Run found in todo/). It stops early when ctx is done.
func (m *Manager) scan(ctx context.Context, found chan<- []item, todo []string) error {
	start := time.Now()
	ids, err := m.Q.IDs(queue.DirInfo)
	if err != nil {
		m.logf("warning: cannot read info/: %v", err)
		return err
	}
	size := scanBatch
	if m.scanBatch > 0 {
		size = m.scanBatch
	}
	batch := make([]item, 0, size)
	read := 0
	send := func() bool {
		if m.scanHook != nil {
			m.scanHook(read)
		}
		select {
		case found <- batch:
			batch = make([]item, 0, size)
			return true
		case <-ctx.Done():
			return false
		}
	}
	const gone = -1
	type scanned struct {
		due  int64
		slow bool
	}
	slowAfter := m.cfg().slowAttempts
	queue.ReadAhead(m.Q, runtime.GOMAXPROCS(0), len(ids), func(r *queue.Reader, i int) scanned {
		data, err := r.ReadState(queue.DirInfo, ids[i])
		if errors.Is(err, fs.ErrNotExist) {
			return scanned{due: gone} // finished since the listing
		}
		if err != nil {
			return scanned{} // due now: the attempt sorts it out
		}
		next, attempts, ok := queue.DueOf(data)
		if !ok {
			return scanned{} // bounces or removal pending, or damage
		}
		return scanned{due: next, slow: slowAfter > 0 && attempts >= slowAfter}
	}, func(i int, s scanned) bool {
		read++
		if s.due != gone {
			batch = append(batch, item{id: ids[i], due: s.due, slow: s.slow})
		}
		return len(batch) < size || send()
	})
	if ctx.Err() != nil || len(batch) > 0 && !send() {
		return nil
	}
	m.logf("status: start-up scan done: %d message(s) in info/ read in %.2fs", len(ids), time.Since(start).Seconds())
	m.cleanup(todo, ids)
	return nil
}
