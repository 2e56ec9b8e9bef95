package remote

import (
	"context"
	"sync"
)

// Limiter bounds the number of connections open at once: to each host
// (PerHost), in all (Total, concurrencyremote), and for old deferred mail
// (Slow, concurrencyslow: deliveries whose context is WithSlowLane). Zero
// means no bound. The queue manager may share one Limiter among all its
// deliveries; a nil *Limiter bounds nothing.
type Limiter struct {
	PerHost, Total, Slow int

	mu    sync.Mutex
	total chan struct{}
	slow  chan struct{}
	hosts map[string]*hostSlots
}

type slowLaneKey struct{}

// WithSlowLane marks a delivery of mail that has been deferred many
// times: its connections come out of the Limiter's Slow slots as well as
// the others, so that a backlog of dead destinations holds at most Slow
// of the Total and fresh mail always finds a slot.
func WithSlowLane(ctx context.Context) context.Context {
	return context.WithValue(ctx, slowLaneKey{}, true)
}

// InSlowLane reports whether ctx was marked by WithSlowLane.
func InSlowLane(ctx context.Context) bool {
	v, _ := ctx.Value(slowLaneKey{}).(bool)
	return v
}

// take waits for a slot of ch, or for ctx to end.
func take(ctx context.Context, ch chan struct{}) error {
	if ch == nil {
		return nil
	}
	select {
	case ch <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// give returns a slot taken by take.
func give(ch chan struct{}) {
	if ch != nil {
		<-ch
	}
}

type hostSlots struct {
	ch    chan struct{}
	users int // holders and waiters, so that idle hosts are forgotten
}

// Acquire waits for a slot for host, or for ctx to end. The returned
// function gives the slot back; call it exactly once.
func (l *Limiter) Acquire(ctx context.Context, host string) (release func(), err error) {
	if l == nil {
		return func() {}, nil
	}
	l.mu.Lock()
	if l.Total > 0 && l.total == nil {
		l.total = make(chan struct{}, l.Total)
	}
	var hs *hostSlots
	if l.PerHost > 0 {
		if l.hosts == nil {
			l.hosts = map[string]*hostSlots{}
		}
		hs = l.hosts[host]
		if hs == nil {
			hs = &hostSlots{ch: make(chan struct{}, l.PerHost)}
			l.hosts[host] = hs
		}
		hs.users++
	}
	if l.Slow > 0 && l.slow == nil {
		l.slow = make(chan struct{}, l.Slow)
	}
	total, slow := l.total, l.slow
	if !InSlowLane(ctx) {
		slow = nil
	}
	l.mu.Unlock()

	done := func() {
		if hs == nil {
			return
		}
		l.mu.Lock()
		hs.users--
		if hs.users == 0 {
			delete(l.hosts, host)
		}
		l.mu.Unlock()
	}
	var hostCh chan struct{}
	if hs != nil {
		hostCh = hs.ch
	}
	// The slow lane's slot first: old mail waiting for one holds no host
	// or total slot that fresh mail could use.
	if err := take(ctx, slow); err != nil {
		done()
		return nil, err
	}
	if err := take(ctx, hostCh); err != nil {
		give(slow)
		done()
		return nil, err
	}
	if err := take(ctx, total); err != nil {
		give(hostCh)
		give(slow)
		done()
		return nil, err
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			give(total)
			give(hostCh)
			give(slow)
			done()
		})
	}, nil
}
