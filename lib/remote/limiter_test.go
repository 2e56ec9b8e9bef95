package remote

import (
	"context"
	"testing"
)

// Deliveries in the slow lane share Slow slots of the Total; fresh mail
// takes the rest, and a slow delivery waiting for its lane holds no slot.
func TestLimiterSlowLane(t *testing.T) {
	l := &Limiter{Total: 3, Slow: 1}
	ctx := context.Background()
	slow := WithSlowLane(ctx)
	if InSlowLane(ctx) || !InSlowLane(slow) {
		t.Fatal("WithSlowLane does not mark the context")
	}
	relSlow, err := l.Acquire(slow, "dead1")
	if err != nil {
		t.Fatal(err)
	}
	// The slow lane is full: a second old delivery waits, even to
	// another host, and gives up with its context.
	cslow, cancel := context.WithCancel(slow)
	cancel()
	if _, err := l.Acquire(cslow, "dead2"); err == nil {
		t.Fatal("two connections in a slow lane of one")
	}
	// Fresh mail gets the two other slots.
	var rels []func()
	for _, h := range []string{"live1", "live2"} {
		rel, err := l.Acquire(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		rels = append(rels, rel)
	}
	// A waiting slow delivery takes the lane once it is free.
	got := make(chan func())
	go func() {
		rel, err := l.Acquire(slow, "dead2")
		if err != nil {
			t.Error(err)
		}
		got <- rel
	}()
	rels[0]()
	relSlow()
	(<-got)()
	rels[1]()
	if l.slow.inUse() != 0 || l.total.inUse() != 0 {
		t.Errorf("slots not given back: slow %d, total %d", l.slow.inUse(), l.total.inUse())
	}
}

// Set changes the bounds while connections are open: they stay, a
// lowered bound holds newcomers until enough end, a raised one lets a
// waiter in at once.
func TestLimiterSet(t *testing.T) {
	l := &Limiter{Total: 2, PerHost: 2, Slow: 1}
	ctx := context.Background()
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	relA, _ := l.Acquire(ctx, "a")
	relB, _ := l.Acquire(ctx, "b")
	l.Set(1, 1, 1)
	relA()
	if _, err := l.Acquire(cancelled, "c"); err == nil {
		t.Fatal("a connection beyond a lowered total")
	}
	relB()
	relC, err := l.Acquire(cancelled, "c")
	if err != nil {
		t.Fatalf("no slot under the lowered total once the others ended: %v", err)
	}
	// Raised while a delivery waits: it gets its slot.
	got := make(chan func())
	go func() {
		rel, err := l.Acquire(ctx, "d")
		if err != nil {
			t.Error(err)
		}
		got <- rel
	}()
	l.Set(2, 1, 0)
	relD := <-got
	// The per-host bound applies to a host already known, and Slow 0
	// bounds nothing.
	l.Set(3, 1, 0)
	if _, err := l.Acquire(cancelled, "d"); err == nil {
		t.Fatal("two connections to d with a per-host bound of 1")
	}
	relS, err := l.Acquire(WithSlowLane(cancelled), "e")
	if err != nil {
		t.Fatalf("slow lane with no bound: %v", err)
	}
	for _, rel := range []func(){relC, relD, relS} {
		rel()
	}
	if n := l.total.inUse() + l.slow.inUse(); n != 0 || len(l.hosts) != 0 {
		t.Errorf("after every release: %d slots in use, %d hosts remembered", n, len(l.hosts))
	}
}
