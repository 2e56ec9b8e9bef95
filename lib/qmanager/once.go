package qmanager

import (
	"context"

	"omail/lib/local"
)

// firstAttempt tells the local transport when nothing of the message can
// have been delivered yet: msgLen >= 0 means this attempt is taking a
// fresh single-file todo/ entry apart, and queue.Unfold has written its
// state to info/ before any delivery, so a crash during this attempt
// leaves a message the next attempt reads from info/. Such a first
// attempt skips the search for an earlier copy that makes mbox and
// Maildir deliveries exactly-once (lib/local/once.go); every later one
// makes it.
func firstAttempt(ctx context.Context, msgLen int64) context.Context {
	if msgLen < 0 {
		return ctx
	}
	return local.FirstAttempt(ctx)
}
