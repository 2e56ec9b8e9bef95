package route

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sort"
	"strings"
)

// Resolver is the part of DNS that routing uses. net.DefaultResolver
// is one; tests pass a fake so that no test ever sends a DNS query.
type Resolver interface {
	LookupMX(ctx context.Context, domain string) ([]*net.MX, error)
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// Error is a routing failure; Perm says whether it is permanent (the
// recipients bounce) or temporary (they wait for the next try).
type Error struct {
	Perm bool
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// Host is one SMTP server to try, in order.
type Host struct {
	Name string // host name, or "[address]"
	Port int
}

// Hosts returns the servers to try for dest, best first. A relay is
// one host; otherwise the domain's MX hosts sorted by preference, in a
// random order among equal preferences (shuffle may be nil: math/rand).
// A domain with no MX record is its own single host (the A/AAAA
// fallback of RFC 5321 5.1). A null MX (RFC 7505) or a domain that does
// not exist is a permanent failure; any other DNS trouble is temporary.
func Hosts(ctx context.Context, r Resolver, dest Dest, shuffle func(n int, swap func(i, j int))) ([]Host, error) {
	if dest.Relay != "" {
		return []Host{{dest.Relay, dest.Port}}, nil
	}
	if dest.Domain == "" {
		return nil, &Error{true, "5.1.2 empty domain"}
	}
	if strings.HasPrefix(dest.Domain, "[") {
		// A recipient at an address literal: user@[192.0.2.1].
		if !validLiteral(dest.Domain) {
			return nil, &Error{true, fmt.Sprintf("5.1.2 bad address literal %s", dest.Domain)}
		}
		return []Host{{dest.Domain, dest.Port}}, nil
	}
	mxs, err := r.LookupMX(ctx, dest.Domain)
	if err != nil && !notFound(err) {
		return nil, &Error{false, fmt.Sprintf("4.4.3 MX lookup for %s failed: %v", dest.Domain, err)}
	}
	if len(mxs) == 0 {
		// No MX: the domain itself, if it has an address.
		if _, err := r.LookupHost(ctx, dest.Domain); err != nil {
			if notFound(err) {
				return nil, &Error{true, fmt.Sprintf("5.1.2 domain %s does not exist", dest.Domain)}
			}
			return nil, &Error{false, fmt.Sprintf("4.4.3 address lookup for %s failed: %v", dest.Domain, err)}
		}
		return []Host{{dest.Domain, dest.Port}}, nil
	}
	if len(mxs) == 1 && (mxs[0].Host == "." || mxs[0].Host == "") {
		return nil, &Error{true, fmt.Sprintf("5.1.10 domain %s accepts no mail (null MX)", dest.Domain)}
	}
	if shuffle == nil {
		shuffle = rand.Shuffle
	}
	list := append([]*net.MX(nil), mxs...)
	shuffle(len(list), func(i, j int) { list[i], list[j] = list[j], list[i] })
	sort.SliceStable(list, func(i, j int) bool { return list[i].Pref < list[j].Pref })
	var hosts []Host
	for _, mx := range list {
		h := strings.TrimSuffix(mx.Host, ".")
		if h == "" {
			continue // a null MX among real ones is nonsense: skip it
		}
		hosts = append(hosts, Host{h, dest.Port})
	}
	if len(hosts) == 0 {
		return nil, &Error{true, fmt.Sprintf("5.1.10 domain %s accepts no mail (null MX)", dest.Domain)}
	}
	return hosts, nil
}

// Addrs returns the IP addresses of a host, without a lookup for a
// bracketed literal.
func Addrs(ctx context.Context, r Resolver, h Host) ([]string, error) {
	if strings.HasPrefix(h.Name, "[") {
		a, err := LiteralAddr(h.Name)
		if err != nil {
			return nil, &Error{true, "5.1.2 " + err.Error()}
		}
		return []string{a.String()}, nil
	}
	addrs, err := r.LookupHost(ctx, h.Name)
	if err != nil {
		// Even "no such host" is temporary here: the host came from an
		// MX record or smtproutes, and either may be fixed.
		return nil, &Error{false, fmt.Sprintf("4.4.3 address lookup for %s failed: %v", h.Name, err)}
	}
	if len(addrs) == 0 {
		return nil, &Error{false, fmt.Sprintf("4.4.3 %s has no address", h.Name)}
	}
	return addrs, nil
}

func notFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}
