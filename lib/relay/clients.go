package relay

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"omail/lib/control"
)

// clientRule is one line of control/relayclients: a single host, or a
// network.
type clientRule struct {
	net  netip.Prefix // a single host is a /32 or /128
	text string       // the rule in canonical form, for the log
}

// errClientLine says what a relayclients line may be.
const errClientLine = `not an IPv4 or IPv6 address, an IPv4 prefix ending in "." (192.168.1.), or a CIDR prefix (2001:db8::/32)`

// parseRelayClient reads one relayclients line:
//
//   - a whole IPv4 or IPv6 address (192.168.1.1, 2001:db8::1): that
//     host only; ::ffff:a.b.c.d is a.b.c.d;
//   - an IPv4 prefix ending in "." (192.168.1.), with or without
//     IndiMail's ":" after it (192.168.1.:): every address that starts
//     with it; a partial IPv4 address without the final dot (192.168.1)
//     is that same prefix, never 192.168.10.x;
//   - a CIDR prefix, IPv4 or IPv6 (10.0.0.0/8, 2001:db8::/32): the
//     network, its host bits ignored.
//
// Anything else is an error: the line grants nothing.
func parseRelayClient(line string) (clientRule, error) {
	s := strings.TrimSpace(line)
	// IndiMail writes "192.168.1.:" (what follows the colon is not
	// used). Only an IPv4 form, with a dot before the first colon, is
	// cut there: an IPv6 address is kept whole.
	if i := strings.IndexByte(s, ':'); i > 0 && strings.Contains(s[:i], ".") {
		s = s[:i]
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil || p.Addr().Zone() != "" {
			return clientRule{}, fmt.Errorf("%q: %s", line, errClientLine)
		}
		if p.Addr().Is4In6() {
			return clientRule{}, fmt.Errorf("%q: an IPv4 network mapped into IPv6: write it as IPv4", line)
		}
		if p != p.Masked() {
			// 10.1.2.3/8 or 1.2.3.4/0: almost always a slip (the /0 one
			// an open relay), so refused, as Postfix warns of it.
			return clientRule{}, fmt.Errorf("%q: host bits set beyond /%d: write the network, %s", line, p.Bits(), p.Masked())
		}
		return clientRule{net: p, text: p.String()}, nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return clientRule{}, fmt.Errorf("%q: %s", line, errClientLine)
		}
		a = a.Unmap()
		return clientRule{net: netip.PrefixFrom(a, a.BitLen()), text: a.String()}, nil
	}
	if p, ok := ipv4Prefix(strings.TrimSuffix(s, ".")); ok {
		return clientRule{net: p, text: strings.TrimSuffix(s, ".") + "."}, nil
	}
	return clientRule{}, fmt.Errorf("%q: %s", line, errClientLine)
}

// ipv4Prefix reads one to three decimal octets, "192.168.1", as the
// network they start: 192.168.1.0/24. An octet with a leading zero is
// refused (010 is 10 to some, 8 to others).
func ipv4Prefix(s string) (netip.Prefix, bool) {
	parts := strings.Split(s, ".")
	if s == "" || len(parts) > 3 {
		return netip.Prefix{}, false
	}
	var b [4]byte
	for i, p := range parts {
		if p == "" || len(p) > 3 || (len(p) > 1 && p[0] == '0') || strings.TrimLeft(p, "0123456789") != "" {
			return netip.Prefix{}, false
		}
		n, err := strconv.Atoi(p)
		if err != nil || n > 255 {
			return netip.Prefix{}, false
		}
		b[i] = byte(n)
	}
	return netip.PrefixFrom(netip.AddrFrom4(b), 8*len(parts)), true
}

// parseRelayClients reads relayclients' entries: the rules, and an
// error naming the file and the line for each line refused.
func parseRelayClients(entries []control.Entry) (rules []clientRule, refused []error) {
	for _, e := range entries {
		r, err := parseRelayClient(e.Text)
		if err != nil {
			refused = append(refused, e.Errorf("relayclients", "%v; ignored, grants nothing", err))
			continue
		}
		rules = append(rules, r)
	}
	return rules, refused
}

// relayClient is the rule of relayclients that lets ip relay, if any.
// ip is compared as an address (TCPREMOTEIP, ::ffff:a.b.c.d taken as
// a.b.c.d), never as text.
func relayClient(rules []clientRule, ip string) (clientRule, bool) {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return clientRule{}, false
	}
	a = a.Unmap().WithZone("")
	for _, r := range rules {
		if r.net.Contains(a) {
			return r, true
		}
	}
	return clientRule{}, false
}
