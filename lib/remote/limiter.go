package remote

import (
	"context"
	"sync"
)

// Limiter bounds the number of connections open at once: to each host
// (PerHost) and in all (Total, concurrencyremote). Zero means no bound.
// The queue manager may share one Limiter among all its deliveries; a
// nil *Limiter bounds nothing.
type Limiter struct {
	PerHost, Total int

	mu    sync.Mutex
	total chan struct{}
	hosts map[string]*hostSlots
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
	total := l.total
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
	if hs != nil {
		select {
		case hs.ch <- struct{}{}:
		case <-ctx.Done():
			done()
			return nil, ctx.Err()
		}
	}
	if total != nil {
		select {
		case total <- struct{}{}:
		case <-ctx.Done():
			if hs != nil {
				<-hs.ch
			}
			done()
			return nil, ctx.Err()
		}
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			if total != nil {
				<-total
			}
			if hs != nil {
				<-hs.ch
			}
			done()
		})
	}, nil
}
