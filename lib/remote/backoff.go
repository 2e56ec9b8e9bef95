package remote

import (
	"sync"
	"time"

	"omail/lib/clock"
)

// Backoff remembers hosts that could not be reached, so that a dead
// host costs one connection timeout now and then instead of one per
// message: after a failure, the host is left alone until a time that
// doubles with each further failure (from Min up to Max), and a success
// forgets it. A nil *Backoff remembers nothing. Safe for concurrent use.
//
// Keys are whatever the caller chooses; Client uses "address:port" for
// the hosts it connects to and route.Dest.Key() for whole destinations
// none of whose hosts answered, which the queue manager can consult
// before it starts a delivery.
type Backoff struct {
	Now      func() time.Time // nil: the real clock (lib/clock)
	Min, Max time.Duration    // zero: 1 minute, 1 hour

	mu sync.Mutex
	m  map[string]backoffEntry
}

type backoffEntry struct {
	fails int
	until time.Time
}

// Failed records a failure of key and returns when it may be tried again.
func (b *Backoff) Failed(key string) time.Time {
	if b == nil {
		return time.Time{}
	}
	lo, hi := b.Min, b.Max
	if lo <= 0 {
		lo = time.Minute
	}
	if hi <= 0 {
		hi = time.Hour
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = map[string]backoffEntry{}
	}
	e := b.m[key]
	e.fails++
	d := lo
	for i := 1; i < e.fails && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	e.until = clock.Now(b.Now).Add(d)
	b.m[key] = e
	return e.until
}

// Succeeded forgets the failures of key.
func (b *Backoff) Succeeded(key string) {
	if b == nil {
		return
	}
	b.mu.Lock()
	delete(b.m, key)
	b.mu.Unlock()
}

// Until reports whether key is being left alone now, and until when.
func (b *Backoff) Until(key string) (time.Time, bool) {
	if b == nil {
		return time.Time{}, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.m[key]
	if !ok || !clock.Now(b.Now).Before(e.until) {
		return time.Time{}, false
	}
	return e.until, true
}

// Reset forgets every failure: a flush (SIGALRM, omail-inject -q) means
// "try everything now", dead hosts included.
func (b *Backoff) Reset() {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.m = nil
	b.mu.Unlock()
}
