package remote

import (
	"context"
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	now := time.Unix(1e9, 0)
	b := &Backoff{Now: func() time.Time { return now }, Min: time.Minute, Max: 4 * time.Minute}
	if _, ok := b.Until("h"); ok {
		t.Fatal("fresh host in back-off")
	}
	for i, want := range []time.Duration{1, 2, 4, 4} {
		if got := b.Failed("h").Sub(now); got != want*time.Minute {
			t.Errorf("failure %d: back-off %v, want %v", i+1, got, want*time.Minute)
		}
	}
	if _, ok := b.Until("h"); !ok {
		t.Error("not in back-off after failures")
	}
	if _, ok := b.Until("other"); ok {
		t.Error("another host in back-off")
	}
	now = now.Add(4 * time.Minute)
	if _, ok := b.Until("h"); ok {
		t.Error("still in back-off when it ended")
	}
	b.Failed("h")
	b.Succeeded("h")
	if _, ok := b.Until("h"); ok {
		t.Error("success did not clear the back-off")
	}
	b.Failed("h")
	b.Reset()
	if _, ok := b.Until("h"); ok {
		t.Error("Reset did not clear the back-off")
	}
	var none *Backoff
	none.Reset()
	none.Failed("h")
	if _, ok := none.Until("h"); ok {
		t.Error("nil Backoff remembered")
	}
}

func TestLimiter(t *testing.T) {
	l := &Limiter{PerHost: 1, Total: 2}
	ctx := context.Background()
	relA, err := l.Acquire(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	// A second slot for a is not free: the wait ends with the context.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := l.Acquire(cctx, "a"); err == nil {
		t.Fatal("two connections to one host")
	}
	relB, err := l.Acquire(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	// Total is 2: c waits too.
	if _, err := l.Acquire(cctx, "c"); err == nil {
		t.Fatal("three connections in all")
	}
	// A waiter gets the slot when it is given back.
	got := make(chan func())
	go func() {
		rel, err := l.Acquire(ctx, "a")
		if err != nil {
			t.Error(err)
		}
		got <- rel
	}()
	relA()
	relA() // a second release is harmless
	rel := <-got
	rel()
	relB()
	l.mu.Lock()
	n := len(l.hosts)
	l.mu.Unlock()
	if n != 0 {
		t.Errorf("%d idle hosts remembered", n)
	}
	var none *Limiter
	r, err := none.Acquire(cctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	r()
}
