package qmanager

import (
	"context"

	"omail/lib/addr"
	"omail/lib/control"
	"omail/lib/outbox"
	"omail/lib/route"
)

// Status is the outcome of one delivery attempt for one recipient.
type Status int

const (
	OK   Status = iota // delivered: never try again
	Temp               // try again later
	Perm               // give up and bounce
)

// Result is what a transport says about one recipient.
type Result struct {
	Status  Status
	Text    string   // one line, for the log, the queue listing and bounces
	Forward []string // local deliveries only: re-queue the message to these
	// Prefix are header lines put in front of a forwarded copy: the
	// Delivered-To line that stops forwarding loops.
	Prefix []string
}

// Transports are the ways out of the queue. Each is a function so that
// tests substitute their own and the programs wire in the real ones.
type Transports struct {
	// Local delivers to one recipient in a local or virtual domain.
	Local func(ctx context.Context, msgPath, sender, rcpt string) Result
	// OCMP writes the message durably into an endpoint's outbox; id is
	// the queue id, which makes a repeated Put after a crash harmless.
	OCMP func(ctx context.Context, endpoint, id, msgPath, sender string, rcpts []string) error
	// Remote delivers by SMTP to rcpts that share one destination.
	Remote func(ctx context.Context, dest route.Dest, msgPath, sender string, rcpts []string) []Result
	// Retry forgets what transports remember about failing hosts, so that
	// SIGALRM ("retry everything now") means it. May be nil.
	Retry func()
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
