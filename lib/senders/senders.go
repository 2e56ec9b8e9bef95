// Package senders is control/ocmpsenders: the envelope senders a proxy
// relays from each OCMP endpoint's bundles.
//
//	kiosk1:@kiosk1.example      any sender at kiosk1.example
//	kiosk1:amina@example.org    this one address
//	kiosk1:.villages.example    any sender at a subdomain of villages.example
//	*:@ngo.example              for every endpoint
//
// A kiosk's users could otherwise put any sender on their mail, and the
// proxy, on the Internet, would relay it as if it were that sender's.
// Like ocmppeers, a line the parser does not understand makes the whole
// file an error naming the line: the caller fails closed.
package senders

import (
	"strings"

	"omail/lib/bundle"
	"omail/lib/control"
)

// File is the control file's name.
const File = "ocmpsenders"

// Any is the endpoint of lines that hold for every endpoint.
const Any = "*"

// Policy is a parsed ocmpsenders.
type Policy struct {
	// per endpoint: addresses (user@domain), domains (from @domain) and
	// parent domains (from .domain), lower-cased
	addrs, domains, parents map[string]map[string]bool
	listed                  map[string]bool // endpoints with any line
}

// Parse reads the entries of an ocmpsenders file.
func Parse(entries []control.Entry) (*Policy, error) {
	p := &Policy{
		addrs:   map[string]map[string]bool{},
		domains: map[string]map[string]bool{},
		parents: map[string]map[string]bool{},
		listed:  map[string]bool{},
	}
	add := func(m map[string]map[string]bool, ep, v string) {
		if m[ep] == nil {
			m[ep] = map[string]bool{}
		}
		m[ep][v] = true
	}
	for _, e := range entries {
		ep, pat, ok := strings.Cut(e.Text, ":")
		ep, pat = strings.TrimSpace(ep), strings.ToLower(strings.TrimSpace(pat))
		if !ok {
			return nil, e.Errorf(File, "want ENDPOINT:@domain, ENDPOINT:user@domain or ENDPOINT:.domain")
		}
		if ep != Any {
			if err := bundle.ValidEndpoint(ep); err != nil {
				return nil, e.Errorf(File, "%v", err)
			}
		}
		local, dom, hasAt := strings.Cut(pat, "@")
		switch {
		case strings.HasPrefix(pat, ".") && !hasAt && goodDomain(pat[1:]):
			add(p.parents, ep, pat[1:])
		case hasAt && local == "" && goodDomain(dom):
			add(p.domains, ep, dom)
		case hasAt && local != "" && goodDomain(dom) && !strings.ContainsAny(local, " \t"):
			add(p.addrs, ep, pat)
		default:
			return nil, e.Errorf(File, "%q is not @domain, user@domain or .domain", pat)
		}
		p.listed[ep] = true
	}
	return p, nil
}

// goodDomain reports whether d can be the domain of a line: not empty,
// no second @, no space, no empty label.
func goodDomain(d string) bool {
	if d == "" || strings.ContainsAny(d, "@ \t") {
		return false
	}
	for _, l := range strings.Split(d, ".") {
		if l == "" {
			return false
		}
	}
	return true
}

// Read reads control/ocmpsenders. ok is false when there is no such file
// (no policy: every sender is relayed).
func Read(d *control.Dir) (p *Policy, ok bool, err error) {
	return control.ReadEntries(d, File, Parse)
}

// Allows reports whether mail from sender may be relayed from endpoint.
// The null sender (a bounce, as the bundle says: "F" with no address,
// or qmail's double-bounce "#@[]") is allowed from an endpoint that has
// any line: a kiosk bounces mail sent to its users, and a bounce has no
// sender to check. An endpoint with no line (nor a "*" line) sends
// nothing.
func (p *Policy) Allows(endpoint, sender string) bool {
	eps := []string{endpoint, Any}
	if sender == "" || sender == "#@[]" {
		return p.listed[endpoint] || p.listed[Any]
	}
	at := strings.LastIndexByte(sender, '@')
	if at <= 0 {
		return false // no domain: nothing to match
	}
	addr := strings.ToLower(sender)
	dom := strings.TrimSuffix(addr[at+1:], ".")
	for _, ep := range eps {
		if p.addrs[ep][addr] || p.domains[ep][dom] {
			return true
		}
		for d := dom; ; {
			i := strings.IndexByte(d, '.')
			if i < 0 {
				break
			}
			d = d[i+1:]
			if p.parents[ep][d] {
				return true
			}
		}
	}
	return false
}
