package delivercmd

import (
	"context"
	"io"
	"os"
	"sync/atomic"

	"omail/lib/control"
	"omail/lib/home"
	"omail/lib/local"
	"omail/lib/outbox"
	"omail/lib/outcome"
	"omail/lib/qmanager"
	"omail/lib/remote"
	"omail/lib/route"
)

// transports wires the real ways out of the queue into the manager.
func transports(h string, ctl *control.Dir, env home.Env, stderr io.Writer) (qmanager.Transports, error) {
	rc, err := remote.FromControl(ctl)
	if err != nil {
		return qmanager.Transports{}, err
	}
	n, err := ctl.Int("concurrencyremote")
	if err != nil {
		return qmanager.Transports{}, err
	}
	slow, err := ctl.Int("concurrencyslow")
	if err != nil {
		return qmanager.Transports{}, err
	}
	// At most concurrencyremote connections in all, a few per host so
	// that one slow host cannot take every slot, and concurrencyslow of
	// them for old deferred mail (the slow lane, lib/qmanager), so that
	// dead destinations never take the slots fresh mail needs.
	rc.Limiter = &remote.Limiter{Total: int(max(1, n)), PerHost: int(max(1, min(n, 5))), Slow: int(min(slow, max(1, n)))}
	rc.Backoff = &remote.Backoff{}
	// The client's settings (helohost, the timeouts, masquerade,
	// dkimkeys) are replaced whole on SIGHUP (Reload); the connection
	// limits and the back-off, which count what is going on now, stay.
	var cur atomic.Pointer[remote.Client]
	cur.Store(rc)
	reload := func() error {
		nrc, err := remote.FromControl(ctl)
		if err != nil {
			return err
		}
		nrc.Limiter, nrc.Backoff = rc.Limiter, rc.Backoff
		cur.Store(nrc)
		return nil
	}
	local, err := localTransport(h, ctl, env)
	if err != nil {
		return qmanager.Transports{}, err
	}
	exe, err := os.Executable()
	if err != nil {
		return qmanager.Transports{}, err
	}
	t := qmanager.Transports{
		Local: func(ctx context.Context, msgPath, sender, rcpt string) outcome.Result {
			return local(ctx, msgPath, -1, sender, rcpt)
		},
		LocalPart: local,
		OCMP: func(ctx context.Context, endpoint, id, msgPath, sender string, rcpts []string) outcome.Result {
			return outbox.Deliver(h, endpoint, id, msgPath, sender, rcpts, cur.Load().Masquerade)
		},
		Retry:  rc.Backoff.Reset,
		Remote: remoteInProcess(&cur),
		Reload: reload,
	}
	if os.Geteuid() == 0 {
		uid, gid, err := remoteIDs(h, ctl)
		if err != nil {
			return qmanager.Transports{}, err
		}
		t.Remote = remoteViaChild(env, exe, uid, gid, rc.Limiter, rc.Backoff, stderr)
	}
	return t, nil
}

// remoteInProcess is the Remote transport when we are not root: the
// SMTP client in this process (the one cur holds when the delivery
// starts), its answers' outcomes as they are.
func remoteInProcess(cur *atomic.Pointer[remote.Client]) func(ctx context.Context, dest route.Dest, msgPath, sender string, rcpts []string) []outcome.Result {
	return func(ctx context.Context, dest route.Dest, msgPath, sender string, rcpts []string) []outcome.Result {
		return outcomes(cur.Load().Deliver(ctx, dest, msgPath, sender, rcpts))
	}
}

// outcomes are the outcomes of remote results, recipient by recipient.
func outcomes(rs []remote.Result) []outcome.Result {
	out := make([]outcome.Result, len(rs))
	for i, r := range rs {
		out[i] = r.Result
	}
	return out
}

// runLocalChild is `omail-deliver -local SENDER RCPT MSGPATH`, the child
// that delivers to one local recipient as that recipient's user.
func runLocalChild(args []string, env home.Env, stdin io.Reader, stdout, stderr io.Writer) int {
	return local.RunChild(args, env, stdin, stdout, stderr)
}

// localTransport returns the local delivery function:
// local.Deliverer.DeliverAs with this program as the child to run, told
// the message's length when it is the start of msgPath (msgLen >= 0:
// qmanager delivering from inside a todo/ entry).
func localTransport(h string, ctl *control.Dir, env home.Env) (func(ctx context.Context, msgPath string, msgLen int64, sender, rcpt string) outcome.Result, error) {
	d := local.New(env)
	// As root, each delivery runs in a child, this same program, with the
	// recipient's ids; otherwise in-process, as the user we are.
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, msgPath string, msgLen int64, sender, rcpt string) outcome.Result {
		if msgLen >= 0 {
			ctx = local.WithMessageLen(ctx, msgLen)
		}
		return d.DeliverAs(ctx, exe, nil, msgPath, sender, rcpt)
	}, nil
}
