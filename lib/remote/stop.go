package remote

import "context"

// Stopping without cutting off. omail-deliver's first SIGTERM means
// "start nothing new": a delivery in progress runs to its end (an SMTP
// session stopped after its DATA is sent again later), but no new
// connection is opened and no wait for a connection slot goes on. Its
// context ends only at a second signal, the hard stop; the first one
// reaches the client as this value.

type stopKey struct{}

// WithStop returns ctx carrying stop: once stop is done, Deliver opens no
// new connection (the recipients not yet tried are deferred), while the
// session in progress goes on until ctx itself ends.
func WithStop(ctx, stop context.Context) context.Context {
	return context.WithValue(ctx, stopKey{}, stop)
}

// StopOf is the stop WithStop put in ctx, or nil.
func StopOf(ctx context.Context) context.Context {
	s, _ := ctx.Value(stopKey{}).(context.Context)
	return s
}

// Stopping reports whether nothing new may start: ctx has ended, or its
// stop has.
func Stopping(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	s := StopOf(ctx)
	return s != nil && s.Err() != nil
}

// UntilStop is ctx, ended also when its stop ends: for waits before a
// connection, which a stop must end. Call the returned func when done.
func UntilStop(ctx context.Context) (context.Context, func()) {
	s := StopOf(ctx)
	if s == nil {
		return ctx, func() {}
	}
	c, cancel := context.WithCancel(ctx)
	unhook := context.AfterFunc(s, cancel)
	return c, func() { unhook(); cancel() }
}
