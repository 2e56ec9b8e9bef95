package packer

import (
	"cmp"
	"slices"
	"time"
)

// Packing order (docs/omail-pack.md, Order): a link that carries little
// at a time takes what is at the front of the first bundle first, so
//
//  1. urgent messages (Priority: urgent, X-Priority: 1), oldest first;
//  2. entries waiting longer than ocmpstarve, oldest first, so that big
//     mail is delayed by small mail, never starved by it;
//  3. entries of at most ocmpsmall bytes, oldest first;
//  4. the rest, oldest first.
//
// Bundles are then filled in that order up to bundlemax (batches).
const (
	classUrgent = iota
	classStarved
	classSmall
	classLarge
)

// ordering holds the control files the order depends on.
type ordering struct {
	small  int64         // ocmpsmall
	starve time.Duration // ocmpstarve
	now    time.Time
}

// class is the place of one message in the packing order.
func (o ordering) class(m source) int {
	switch {
	case m.urgent:
		return classUrgent
	case o.now.Sub(m.since) > o.starve:
		return classStarved
	case m.size <= o.small:
		return classSmall
	}
	return classLarge
}

// sort puts msgs in packing order. Within a class, the older first; at
// the same age, the order they came in (the outbox lists by queue id,
// which starts with the time).
func (o ordering) sort(msgs []source) {
	slices.SortStableFunc(msgs, func(a, b source) int {
		if c := cmp.Compare(o.class(a), o.class(b)); c != 0 {
			return c
		}
		return a.since.Compare(b.since)
	})
}
