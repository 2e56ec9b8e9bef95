package delivercmd

import (
	"context"
	"io"
	"os"

	"omail/lib/control"
	"omail/lib/home"
	"omail/lib/local"
	"omail/lib/outbox"
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
	// At most concurrencyremote connections in all, and a few per host so
	// that one slow host cannot take every slot.
	rc.Limiter = &remote.Limiter{Total: int(max(1, n)), PerHost: int(max(1, min(n, 5)))}
	rc.Backoff = &remote.Backoff{}
	local, err := localTransport(h, ctl, env)
	if err != nil {
		return qmanager.Transports{}, err
	}
	exe, err := os.Executable()
	if err != nil {
		return qmanager.Transports{}, err
	}
	t := qmanager.Transports{
		Local: local,
		OCMP: func(ctx context.Context, endpoint, id, msgPath, sender string, rcpts []string) error {
			return outbox.PutMasqueraded(h, endpoint, id, msgPath, sender, rcpts, rc.Masquerade)
		},
		Retry: rc.Backoff.Reset,
		Remote: func(ctx context.Context, dest route.Dest, msgPath, sender string, rcpts []string) []qmanager.Result {
			rs := rc.Deliver(ctx, dest, msgPath, sender, rcpts)
			out := make([]qmanager.Result, len(rs))
			for i, r := range rs {
				out[i] = qmanager.Result{Status: fromRemote(r.Status), Text: r.Text}
			}
			return out
		},
	}
	if os.Geteuid() == 0 {
		uid, gid, err := remoteIDs(h)
		if err != nil {
			return qmanager.Transports{}, err
		}
		t.Remote = remoteViaChild(env, exe, uid, gid, rc.Limiter, rc.Backoff, stderr)
	}
	return t, nil
}

func fromRemote(s remote.Status) qmanager.Status {
	switch s {
	case remote.OK:
		return qmanager.OK
	case remote.Perm:
		return qmanager.Perm
	}
	return qmanager.Temp
}

// runLocalChild is `omail-deliver -local SENDER RCPT MSGPATH`, the child
// that delivers to one local recipient as that recipient's user.
func runLocalChild(args []string, env home.Env, stdin io.Reader, stdout, stderr io.Writer) int {
	return local.RunChild(args, env, stdin, stdout, stderr)
}

// localTransport returns the local delivery function.
func localTransport(h string, ctl *control.Dir, env home.Env) (func(ctx context.Context, msgPath, sender, rcpt string) qmanager.Result, error) {
	d := local.New(env)
	// As root, each delivery runs in a child, this same program, with the
	// recipient's ids; otherwise in-process, as the user we are.
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, msgPath, sender, rcpt string) qmanager.Result {
		r := d.DeliverAs(ctx, exe, nil, msgPath, sender, rcpt)
		return qmanager.Result{Status: fromLocal(r.Status), Text: r.Text, Forward: r.Forward, Prefix: r.Prefix}
	}, nil
}

func fromLocal(s local.Status) qmanager.Status {
	switch s {
	case local.OK:
		return qmanager.OK
	case local.Perm:
		return qmanager.Perm
	}
	return qmanager.Temp
}
