package testfake

import (
	"context"
	"net"
)

// DNS is a resolver answering from maps, with the two lookups routing
// uses (it satisfies route.Resolver). Names are looked up exactly as
// the maps spell them. A name in Fail fails temporarily for both
// lookups, as a server that misbehaves; a name in no map does not
// exist (NXDOMAIN); nothing is ever sent to a real DNS server. The
// context is not consulted: every answer is immediate.
//
// Answers are copies, so a caller that sorts or edits them leaves the
// maps as the test wrote them. The zero DNS knows no name at all.
type DNS struct {
	MX    map[string][]*net.MX // domain: its MX records ({Host: ".", Pref: 0} is a null MX)
	Hosts map[string][]string  // host name: its addresses
	Fail  map[string]bool      // names whose lookups fail temporarily
}

// LookupMX returns the domain's MX records from d.MX.
func (d DNS) LookupMX(_ context.Context, domain string) ([]*net.MX, error) {
	if d.Fail[domain] {
		return nil, temporary(domain)
	}
	mx, ok := d.MX[domain]
	if !ok {
		return nil, notFound(domain)
	}
	out := make([]*net.MX, len(mx))
	for i, m := range mx {
		c := *m
		out[i] = &c
	}
	return out, nil
}

// LookupHost returns the host's addresses from d.Hosts.
func (d DNS) LookupHost(_ context.Context, host string) ([]string, error) {
	if d.Fail[host] {
		return nil, temporary(host)
	}
	addrs, ok := d.Hosts[host]
	if !ok {
		return nil, notFound(host)
	}
	return append([]string(nil), addrs...), nil
}

// The errors are the ones net.Resolver gives, so code that looks at
// IsNotFound and IsTemporary sees what it would see in production.
func notFound(name string) error {
	return &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

func temporary(name string) error {
	return &net.DNSError{Err: "server misbehaving", Name: name, IsTemporary: true}
}
