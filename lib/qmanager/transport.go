package qmanager

import (
	"context"

	"omail/lib/addr"
	"omail/lib/control"
	"omail/lib/outbox"
	"omail/lib/outcome"
	"omail/lib/route"
)

// Transports are the ways out of the queue. Each is a function so that
// tests substitute their own and the program wires in the real ones
// (delivercmd.transports). Each reports an outcome.Result per recipient,
// whose zero value is a temporary failure; record is the one place an
// outcome becomes a stored queue status.
type Transports struct {
	// Local delivers to one recipient in a local or virtual domain. Set
	// by delivercmd.transports (localTransport) to local.Deliverer.DeliverAs,
	// which as root runs each delivery in an "omail-deliver -local" child
	// with the recipient's ids.
	Local func(ctx context.Context, msgPath, sender, rcpt string) outcome.Result
	// LocalPart is Local for a message that is the first msgLen bytes of
	// msgPath (a single-file todo/ entry, its envelope after the
	// message). When it is set, an attempt whose recipients are all
	// local delivers such an entry from inside todo/ID and writes info/
	// only if something is left to remember; when nil, every attempt
	// takes the entry apart first. Set by delivercmd.transports.
	LocalPart func(ctx context.Context, msgPath string, msgLen int64, sender, rcpt string) outcome.Result
	// OCMP writes the message durably into an endpoint's outbox and
	// returns the outcome for all of rcpts; id is the queue id, which
	// makes a repeated delivery after a crash harmless. Set by
	// delivercmd.transports to outbox.Deliver.
	OCMP func(ctx context.Context, endpoint, id, msgPath, sender string, rcpts []string) outcome.Result
	// Remote delivers by SMTP to rcpts that share one destination, one
	// outcome per recipient in order. Set by delivercmd.transports to
	// remote.Client.Deliver, or as root to remoteViaChild, which runs it
	// in an unprivileged "omail-deliver -remote" child.
	Remote func(ctx context.Context, dest route.Dest, msgPath, sender string, rcpts []string) []outcome.Result
	// Retry forgets what transports remember about failing hosts, so that
	// SIGALRM ("retry everything now") means it. May be nil. Set by
	// delivercmd.transports to remote.Backoff.Reset.
	Retry func()
	// Reload rereads what the transports take from control files
	// (SIGHUP, after the manager's own). May be nil. Set by
	// delivercmd.transports: the SMTP client's helohost, timeouts,
	// masquerade and dkimkeys.
	Reload func() error
}

// RouteKind is where a recipient goes.
type RouteKind int

const (
	RouteLocal RouteKind = iota
	RouteOCMP
	RouteSMTP
)

// Route is the routing decision for one recipient.
type Route struct {
	Kind     RouteKind
	Endpoint string     // RouteOCMP
	Dest     route.Dest // RouteSMTP
}

// Key groups recipients that one delivery can carry together.
func (r Route) Key(rcpt string) string {
	switch r.Kind {
	case RouteOCMP:
		return "ocmp:" + r.Endpoint
	case RouteSMTP:
		return "smtp:" + r.Dest.Key()
	}
	return "local:" + rcpt
}

// Router decides routes from the control files, in design.md's order:
// locals and virtualdomains, then ocmproutes, then smtproutes, then MX.
type Router struct {
	ctl     *control.Dir
	locals  control.DomainSet
	virtual *control.DomainMap
	smtp    *route.Routes
}

// NewRouter reads the routing control files.
func NewRouter(ctl *control.Dir) (*Router, error) {
	locals, err := ctl.DomainSet("locals")
	if err != nil {
		return nil, err
	}
	virtual, err := ctl.DomainMap("virtualdomains")
	if err != nil {
		return nil, err
	}
	smtp, err := route.Load(ctl)
	if err != nil {
		return nil, err
	}
	return &Router{ctl: ctl, locals: locals, virtual: virtual, smtp: smtp}, nil
}

// Route returns where rcpt goes.
func (r *Router) Route(rcpt string) (Route, error) {
	_, domain := addr.Split(rcpt)
	domain = control.NormalizeDomain(domain)
	if r.locals.Has(domain) {
		return Route{Kind: RouteLocal}, nil
	}
	// As qmail: an empty prefix ("dom:") exempts a domain from a wider
	// virtualdomains entry.
	if v, _, ok := r.virtual.Lookup(domain); ok && v != "" {
		return Route{Kind: RouteLocal}, nil
	}
	ep, ok, err := outbox.Route(r.ctl, rcpt)
	if err != nil {
		return Route{}, err
	}
	if ok {
		return Route{Kind: RouteOCMP, Endpoint: ep}, nil
	}
	return Route{Kind: RouteSMTP, Dest: r.smtp.Lookup(domain)}, nil
}
