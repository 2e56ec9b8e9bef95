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
	if len(l.slow) != 0 || len(l.total) != 0 {
		t.Errorf("slots not given back: slow %d, total %d", len(l.slow), len(l.total))
	}
}
