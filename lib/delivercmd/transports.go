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
	cur, reload, err := remoteClient(ctl)
	if err != nil {
		return qmanager.Transports{}, err
	}
	rc := cur.Load() // its Limiter and Backoff are every client's
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
		Remote: remoteInProcess(cur),
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

// remoteClient is the SMTP client as the control files say, and the
// function that rereads them (SIGHUP). The client's settings (helohost,
// the timeouts, masquerade, dkimkeys) are replaced whole; the connection
// limits and the back-off, which count what is going on now, stay, with
// the limits' bounds set anew.
func remoteClient(ctl *control.Dir) (cur *atomic.Pointer[remote.Client], reload func() error, err error) {
	rc, err := remote.FromControl(ctl)
	if err != nil {
		return nil, nil, err
	}
	total, perHost, slow, err := connectionLimits(ctl)
	if err != nil {
		return nil, nil, err
	}
	rc.Limiter = &remote.Limiter{Total: total, PerHost: perHost, Slow: slow}
	rc.Backoff = &remote.Backoff{}
	cur = new(atomic.Pointer[remote.Client])
	cur.Store(rc)
	reload = func() error {
		nrc, err := remote.FromControl(ctl)
		if err != nil {
			return err
		}
		total, perHost, slow, err := connectionLimits(ctl)
		if err != nil {
			return err
		}
		rc.Limiter.Set(total, perHost, slow)
		nrc.Limiter, nrc.Backoff = rc.Limiter, rc.Backoff
		cur.Store(nrc)
		return nil
	}
	return cur, reload, nil
}

// connectionLimits reads concurrencyremote and concurrencyslow: at most
// that many SMTP connections in all, a few per host so that one slow
// host cannot take every slot, and concurrencyslow of them for old
// deferred mail (the slow lane, lib/qmanager), so that dead destinations
// never take the slots fresh mail needs.
func connectionLimits(ctl *control.Dir) (total, perHost, slow int, err error) {
	n, err := ctl.Int("concurrencyremote")
	if err != nil {
		return 0, 0, 0, err
	}
	s, err := ctl.Int("concurrencyslow")
	if err != nil {
		return 0, 0, 0, err
	}
	total = int(max(1, n))
	return total, min(total, 5), int(min(s, int64(total))), nil
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
