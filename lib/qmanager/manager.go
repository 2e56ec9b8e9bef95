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
	"os"
	"path/filepath"
	"sync"
	"time"

	"omail/lib/control"
	"omail/lib/queue"
)

// Manager delivers the messages of one queue.
type Manager struct {
	Q   *queue.Queue
	Ctl *control.Dir
	T   Transports
	Now func() time.Time
	Log io.Writer

	mu   sync.Mutex
	conf *config
	rtr  *Router
	logm sync.Mutex
}

type config struct {
	me             string
	holdRemote     bool
	queueLifetime  time.Duration
	concurrency    int
	bounceFrom     string
	doubleBounceTo string
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

func (m *Manager) now() time.Time {
	if m.Now == nil {
		return time.Now()
	}
	return m.Now()
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
func (m *Manager) Flush(ctx context.Context) error {
	m.Cleanup()
	ids, err := m.allIDs()
	if err != nil {
		return err
	}
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
	for _, id := range ids {
		work <- id
	}
	close(work)
	wg.Wait()
	return firstErr
}

// allIDs lists the messages in todo/ and info/, in arrival order.
func (m *Manager) allIDs() ([]string, error) {
	todo, err := m.sortedIDs(queue.DirTodo)
	if err != nil {
		return nil, err
	}
	info, err := m.sortedIDs(queue.DirInfo)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	for _, id := range append(info, todo...) {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out, nil
}

// OrphanAge is how old a message file without an envelope, or a file in
// tmp/, must be before it is removed: far longer than any omail-queue
// run (its own timeout is a day).
const OrphanAge = 36 * time.Hour

// Cleanup removes what crashed writers left: files in tmp/ and message
// files that never got an envelope, once they are older than OrphanAge.
func (m *Manager) Cleanup() {
	// File times are the real clock's, whatever clock the schedule runs on.
	cutoff := time.Now().Add(-OrphanAge)
	for _, dir := range []string{queue.DirTmp, queue.DirMess} {
		ents, err := os.ReadDir(m.Q.Path(dir, ""))
		if err != nil {
			continue
		}
		for _, e := range ents {
			fi, err := e.Info()
			if err != nil || fi.ModTime().After(cutoff) {
				continue
			}
			name := e.Name()
			if dir == queue.DirMess && (m.exists(queue.DirTodo, name) || m.exists(queue.DirInfo, name)) {
				continue
			}
			if os.Remove(filepath.Join(m.Q.Dir, dir, name)) == nil {
				m.logf("removed %s/%s left by a crash", dir, name)
			}
		}
	}
}

// item is a message waiting in the daemon's schedule.
type item struct {
	id    string
	due   int64
	flush bool // SIGALRM: deliver held recipients too
}

type schedule []item

func (s schedule) Len() int           { return len(s) }
func (s schedule) Less(i, j int) bool { return s[i].due < s[j].due }
func (s schedule) Swap(i, j int)      { s[i], s[j] = s[j], s[i] }
func (s *schedule) Push(x any)        { *s = append(*s, x.(item)) }
func (s *schedule) Pop() any {
	old := *s
	it := old[len(old)-1]
	*s = old[:len(old)-1]
	return it
}

// Signals are what the daemon reacts to, as channels so tests can drive
// them without sending real signals.
type Signals struct {
	New    <-chan struct{} // the trigger fifo was written: look in todo/
	Alarm  <-chan struct{} // SIGALRM: everything is due now
	Reload <-chan struct{} // SIGHUP: reread control files
}

// Run is the daemon: it keeps a schedule of every message in memory,
// reading each state file once at start and after each attempt, and
// looks into todo/ only when told there is something new. It returns
// when ctx is cancelled, after the deliveries in progress have finished.
func (m *Manager) Run(ctx context.Context, sig Signals) error {
	m.Cleanup()
	var sched schedule
	queued := map[string]bool{} // in sched or being delivered
	push := func(id string, due int64) {
		heap.Push(&sched, item{id: id, due: due})
		queued[id] = true
	}
	ids, err := m.allIDs()
	if err != nil {
		return err
	}
	for _, id := range ids {
		push(id, m.dueOf(id))
	}

	type done struct {
		id   string
		next int64
		open bool
		err  error
	}
	results := make(chan done)
	running := 0
	limit := m.cfg().concurrency
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	stopping := false
	ctxDone := ctx.Done()
	busyRetry := int64(60)

	for {
		now := m.now().Unix()
		// Start what is due, as far as the concurrency limit allows.
		for !stopping && running < limit && sched.Len() > 0 && sched[0].due <= now {
			it := heap.Pop(&sched).(item)
			running++
			go func(it item) {
				next, open, err := m.attempt(ctx, it.id, it.flush)
				results <- done{it.id, next, open, err}
			}(it)
		}
		if stopping && running == 0 {
			return nil
		}
		wait := time.Hour
		if sched.Len() > 0 && running < limit {
			secs := max(0, min(sched[0].due-now, 3600)) // due may be Never
			wait = time.Duration(secs) * time.Second
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
		case r := <-results:
			running--
			delete(queued, r.id)
			switch {
			case errors.Is(r.err, errBusy):
				// A flush holds it; look again a little later.
				push(r.id, m.now().Unix()+busyRetry)
			case r.err != nil:
				m.logf("warning: msg %s: %v", r.id, r.err)
				push(r.id, m.now().Unix()+busyRetry)
			case r.open:
				push(r.id, r.next)
			}
		case <-sig.New:
			todo, err := m.sortedIDs(queue.DirTodo)
			if err != nil {
				m.logf("warning: cannot read todo/: %v", err)
			}
			for _, id := range todo {
				if !queued[id] {
					push(id, 0)
				}
			}
		case <-sig.Alarm:
			if m.T.Retry != nil {
				m.T.Retry()
			}
			for i := range sched {
				sched[i].due, sched[i].flush = 0, true
			}
			heap.Init(&sched)
		case <-sig.Reload:
			if err := m.Load(); err != nil {
				m.logf("warning: control files not reread, keeping the old ones: %v", err)
			} else {
				m.logf("control files reread")
			}
		case <-timer.C:
		}
	}
}

// dueOf reads a message's state once, to place it in the schedule. A
// message that cannot be read now is due at once; attempt sorts it out.
func (m *Manager) dueOf(id string) int64 {
	data, err := os.ReadFile(m.Q.Path(queue.DirInfo, id))
	if err != nil {
		return 0
	}
	st, err := queue.ParseState(id, data)
	if err != nil {
		return 0
	}
	n, ok := st.NextTry()
	if !ok {
		return 0 // bounces or removal pending
	}
	return n
}
