package qmanager

import (
	"context"

	"omail/lib/local"
)

// firstAttempt tells the local transport when nothing of the message can
// have been delivered yet: fresh means this attempt gave a single-file
// todo/ entry its name in mess/, durably and under the message's lock
// (queue.LinkLocked), and read its state from todo/. Every attempt makes
// or finds that name before it delivers anything, so one that finds it
// may follow a crashed one. Such a first attempt skips the search for an
// earlier copy that makes mbox and Maildir deliveries exactly-once
// (lib/local/once.go); every later one makes it.
func firstAttempt(ctx context.Context, fresh bool) context.Context {
	if !fresh {
		return ctx
	}
	return local.FirstAttempt(ctx)
}
