package remote

import (
	"context"
	"sync"
)

// Limiter bounds the number of connections open at once: to each host
// (PerHost), in all (Total, concurrencyremote), and for old deferred mail
// (Slow, concurrencyslow: deliveries whose context is WithSlowLane). Zero
// means no bound. The queue manager may share one Limiter among all its
// deliveries; a nil *Limiter bounds nothing. The bounds are read when
// the Limiter is first used; Set changes them later (SIGHUP).
type Limiter struct {
	PerHost, Total, Slow int

	once  sync.Once
	mu    sync.Mutex // guards hosts and perHost
	total sem
	slow  sem
	hosts map[string]*hostSlots
	// perHost is PerHost as last set: the bound of a host's slots.
	perHost int
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

// sem counts slots in use against a bound that may change while slots
// are held: a lower bound makes newcomers wait until enough are given
// back, a higher one lets waiters in at once.
type sem struct {
	mu    sync.Mutex
	max   int // 0: no bound
	used  int
	freed chan struct{} // closed when a slot is given back or the bound changes; nil: nobody waits
}

// take waits for a slot, or for ctx to end.
func (s *sem) take(ctx context.Context) error {
	for {
		s.mu.Lock()
		if s.max <= 0 || s.used < s.max {
			s.used++
			s.mu.Unlock()
			return nil
		}
		if s.freed == nil {
			s.freed = make(chan struct{})
		}
		freed := s.freed
		s.mu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// give returns a slot taken by take.
func (s *sem) give() {
	s.mu.Lock()
	s.used--
	s.wake()
	s.mu.Unlock()
}

// setMax changes the bound.
func (s *sem) setMax(n int) {
	s.mu.Lock()
	s.max = n
	s.wake()
	s.mu.Unlock()
}

// inUse is the number of slots held.
func (s *sem) inUse() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used
}

// wake lets every waiter look again; s.mu is held.
func (s *sem) wake() {
	if s.freed != nil {
		close(s.freed)
		s.freed = nil
	}
}

type hostSlots struct {
	sem
	users int // holders and waiters, so that idle hosts are forgotten
}

// init takes the bounds from the fields, once.
func (l *Limiter) init() {
	l.once.Do(func() {
		l.total.setMax(l.Total)
		l.slow.setMax(l.Slow)
		l.mu.Lock()
		l.perHost = l.PerHost
		l.mu.Unlock()
	})
}

// Set changes the bounds, as SIGHUP rereads concurrencyremote and
// concurrencyslow. Connections open now stay open; beyond a lowered
// bound, new ones wait until enough of them end.
func (l *Limiter) Set(total, perHost, slow int) {
	l.init()
	l.total.setMax(total)
	l.slow.setMax(slow)
	l.mu.Lock()
	l.perHost = perHost
	for _, hs := range l.hosts {
		hs.setMax(perHost)
	}
	l.mu.Unlock()
}

// Bounds are the bounds in force: Total, PerHost and Slow as last set.
func (l *Limiter) Bounds() (total, perHost, slow int) {
	l.init()
	l.total.mu.Lock()
	total = l.total.max
	l.total.mu.Unlock()
	l.slow.mu.Lock()
	slow = l.slow.max
	l.slow.mu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	return total, l.perHost, slow
}

// Acquire waits for a slot for host, or for ctx to end. The returned
// function gives the slot back; call it exactly once.
func (l *Limiter) Acquire(ctx context.Context, host string) (release func(), err error) {
	if l == nil {
		return func() {}, nil
	}
	l.init()
	l.mu.Lock()
	if l.hosts == nil {
		l.hosts = map[string]*hostSlots{}
	}
	hs := l.hosts[host]
	if hs == nil {
		hs = &hostSlots{}
		hs.max = l.perHost
		l.hosts[host] = hs
	}
	hs.users++
	l.mu.Unlock()

	done := func() {
		l.mu.Lock()
		hs.users--
		if hs.users == 0 {
			delete(l.hosts, host)
		}
		l.mu.Unlock()
	}
	slow := InSlowLane(ctx)
	// The slow lane's slot first: old mail waiting for one holds no host
	// or total slot that fresh mail could use.
	if slow {
		if err := l.slow.take(ctx); err != nil {
			done()
			return nil, err
		}
	}
	giveSlow := func() {
		if slow {
			l.slow.give()
		}
	}
	if err := hs.take(ctx); err != nil {
		giveSlow()
		done()
		return nil, err
	}
	if err := l.total.take(ctx); err != nil {
		hs.give()
		giveSlow()
		done()
		return nil, err
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			l.total.give()
			hs.give()
			giveSlow()
			done()
		})
	}, nil
}
