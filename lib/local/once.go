package local

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"strconv"

	"omail/lib/queue"
)

// Exactly once. A crash between a delivery and the queue's record of it
// makes the queue manager deliver again. For mbox and Maildir targets the
// mailbox itself is the record that stops the second copy: every target
// of a delivery has a token, stable across attempts (the queue id, the
// recipient as queued, the way through aliases and the instruction's
// place), and the copy a delivery writes carries it: the Maildir file is
// named after it (maildir.NameFor), the mbox message has it in an
// X-Omail-Delivery: header line (mbox.Appender.Recover). An attempt that
// may follow an earlier one looks for the token first and, finding a
// whole copy, reports success without writing another; finding a torn
// mbox copy at the end of the file, cuts it off and delivers again.
//
// "May follow an earlier one" is the queue's knowledge: an attempt on a
// fresh single-file todo/ entry first gives the file its mess/ID name and
// fsyncs mess/ before any delivery (queue.LinkMessage), so a crash during
// it leaves that name behind, and only an attempt that finds the name
// already there can come after a delivery. The attempt that creates the
// name is marked fresh by the queue manager (FirstAttempt) and
// skips the search, which for an mbox reads the whole file. Without
// the mark (a by-hand "omail-deliver -local", tests) the search is made.
// docs/INTERNALS.md ("Exactly-once local delivery") has the argument.

type attemptKey struct{}

// attempt is what the queue manager and the walk through aliases tell a
// delivery about itself.
type attempt struct {
	id    string // the delivery id of this recipient (and alias step)
	fresh bool   // no earlier attempt can have delivered anything
}

// FirstAttempt marks ctx: nothing of this message can have been delivered
// before (the queue manager is taking a fresh todo/ entry apart), so the
// deliveries under ctx need not look for an earlier copy.
func FirstAttempt(ctx context.Context) context.Context {
	a, _ := ctx.Value(attemptKey{}).(attempt)
	a.fresh = true
	return context.WithValue(ctx, attemptKey{}, a)
}

// IsFirstAttempt reports whether ctx is marked by FirstAttempt: the
// deliveries under it do not look for an earlier copy.
func IsFirstAttempt(ctx context.Context) bool {
	a, _ := ctx.Value(attemptKey{}).(attempt)
	return a.fresh
}

// attemptOf returns ctx's attempt, with id set to DeliveryID(msgPath,
// rcpt) when ctx has none yet (a recipient as the queue gave it). A
// message file not named by a queue id (a by-hand "omail-deliver -local"
// with any file) says nothing about which message it holds: such a
// delivery gets an id of its own, never seen before, and is a first
// attempt, as every by-hand run was before delivery ids.
func attemptOf(ctx context.Context, msgPath, rcpt string) (context.Context, attempt) {
	a, _ := ctx.Value(attemptKey{}).(attempt)
	if a.id == "" {
		if queue.ValidID(filepath.Base(msgPath)) {
			a.id = DeliveryID(msgPath, rcpt)
		} else {
			var r [8]byte
			rand.Read(r[:]) // crypto/rand.Read never fails on Linux
			a.id, a.fresh = "once."+hex.EncodeToString(r[:]), true
		}
		ctx = context.WithValue(ctx, attemptKey{}, a)
	}
	return ctx, a
}

// withStep gives the deliveries under ctx the id of one step of an
// alias: "\user" target i, or the program and file targets ("f").
func withStep(ctx context.Context, step string) context.Context {
	a, _ := ctx.Value(attemptKey{}).(attempt)
	a.id += "/" + step
	return context.WithValue(ctx, attemptKey{}, a)
}

// withAttempt is the attempt a delivery child was sent.
func withAttempt(ctx context.Context, id string, fresh bool) context.Context {
	return context.WithValue(ctx, attemptKey{}, attempt{id: id, fresh: fresh})
}

// DeliveryID names one recipient of one queued message, the same at every
// attempt: the queue id (the name of the message file), a dot, and 8 hex
// digits of a hash of the recipient as queued. Programs get it, with the
// instruction's place, as DELIVERY_ID.
func DeliveryID(msgPath, rcpt string) string {
	h := sha256.Sum256([]byte(rcpt))
	return filepath.Base(msgPath) + "." + hex.EncodeToString(h[:4])
}

// token names one target (instruction i) of a delivery.
func (a attempt) token(i int) string { return a.id + "/" + strconv.Itoa(i) }
