// Package route decides where SMTP mail for a domain goes: the
// smtproutes control file (with the per-route TLS and AUTH settings of
// smtptls and smtpauth) or, failing that, the domain's MX hosts.
//
// smtproutes keeps qmail's syntax: "dom:relay[:port]", ":relay" for every
// domain (a smart host), ".dom" for every domain under dom, an empty
// relay for "look up the MX as usual" (possibly with a port), and a
// bracketed address "[192.0.2.1]" or "[::1]" for a host that needs no
// lookup at all.
package route

import (
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"omail/lib/control"
)

// DefaultPort is the SMTP port used when a route names none.
const DefaultPort = 25

// Credentials are what omail says in AUTH to a smart host.
type Credentials struct {
	User, Password string
}

// Dest is one place SMTP mail goes to: a relay named in smtproutes, or
// the MX hosts of Domain when Relay is empty.
type Dest struct {
	Domain     string       // the recipients' domain (for the MX lookup, and in messages)
	Relay      string       // host name or "[address]"; empty means the MX of Domain
	Port       int          // TCP port, DefaultPort unless smtproutes says otherwise
	RequireTLS bool         // smtptls lists it, or it has credentials: never send in clear, verify the certificate
	Auth       *Credentials // from smtpauth; only ever sent over TLS
	// Wait, when set, is why no SMTP mail may go now (a 4.3.5 text):
	// smtpauth cannot be used, so which relays need credentials is not
	// known. The transport defers every recipient with it.
	Wait string
}

// Key names the destination for grouping recipients and for back-off:
// recipients with equal keys can share one SMTP transaction.
func (d Dest) Key() string {
	if d.Relay == "" {
		return "mx:" + control.NormalizeDomain(d.Domain) + ":" + strconv.Itoa(d.Port)
	}
	return "relay:" + strings.ToLower(d.Relay) + ":" + strconv.Itoa(d.Port)
}

func (d Dest) String() string {
	if d.Relay == "" {
		return fmt.Sprintf("MX of %s port %d", d.Domain, d.Port)
	}
	return fmt.Sprintf("%s port %d", d.Relay, d.Port)
}

// Routes is the loaded routing configuration.
type Routes struct {
	smtp    *control.DomainMap
	tls     *control.DomainMap     // smtptls as a domain set: value unused
	auth    map[string]Credentials // "relay" or "relay:port", lower case
	authErr error                  // smtpauth unusable: every Dest waits
}

// Load reads smtproutes, smtptls and smtpauth. Any problem in smtproutes
// or smtptls, a badly written line included, is an error: mail must not
// go somewhere the administrator did not mean, so the caller defers it.
// A problem with smtpauth (readable by others, a bad line) is not: it
// concerns SMTP mail alone, so Load succeeds and every Dest it gives
// carries the problem in Wait, while local and OCMP mail keep flowing.
func Load(ctl *control.Dir) (*Routes, error) {
	lines, err := ctl.List("smtproutes")
	if err != nil {
		return nil, err
	}
	r, err := Parse(lines)
	if err != nil {
		return nil, err
	}
	tls, err := ctl.List("smtptls")
	if err != nil {
		return nil, err
	}
	if err := checkTLSNames(tls); err != nil {
		return nil, err
	}
	if r.tls, err = control.ParseDomainMap("smtptls", withColon(tls)); err != nil {
		return nil, err
	}
	if r.auth, err = loadAuth(ctl); err != nil {
		r.auth, r.authErr = map[string]Credentials{}, err
	}
	return r, nil
}

// checkTLSNames refuses an smtptls line that is not a host name, a
// ".domain" or an "[address]": one that never matches would let mail
// meant to require a verified certificate go without one, and say
// nothing.
func checkTLSNames(names []string) error {
	for _, n := range names {
		v := strings.TrimSuffix(n, ":")
		ok := validLiteral(v)
		if h := strings.TrimPrefix(v, "."); !ok && h != "" {
			// An internationalised name is checked as its A-labels, the
			// form it is looked up in (control.NormalizeDomain).
			ok = validHost(control.NormalizeDomain(h))
		}
		if !ok {
			return &control.Error{File: "smtptls", Err: fmt.Errorf("line %q is not a host name, a .domain or an [address]%s", n, commentHint(n))}
		}
	}
	return nil
}

// commentHint explains a '#' in a line: control files have whole-line
// comments only.
func commentHint(line string) string {
	if strings.Contains(line, "#") {
		return " (a comment must be a line of its own)"
	}
	return ""
}

// withColon turns a list of names into domain map lines, so that the
// ".dom" wildcards of a DomainMap work for plain lists too.
func withColon(names []string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		out = append(out, strings.TrimSuffix(n, ":")+":")
	}
	return out
}

// Parse builds Routes from the lines of smtproutes alone (no TLS or
// AUTH settings). Every value is checked now, not when mail arrives.
func Parse(lines []string) (*Routes, error) {
	m, err := control.ParseDomainMap("smtproutes", lines)
	if err != nil {
		return nil, err
	}
	for _, l := range lines {
		_, v, _ := strings.Cut(l, ":")
		if _, _, err := ParseRelay(v); err != nil {
			return nil, &control.Error{File: "smtproutes", Err: fmt.Errorf("line %q: %v%s", l, err, commentHint(v))}
		}
	}
	return &Routes{smtp: m, auth: map[string]Credentials{}}, nil
}

// ParseRelay splits the value of an smtproutes line, "relay[:port]",
// where relay may be empty, a host name, or a bracketed address.
func ParseRelay(v string) (relay string, port int, err error) {
	v = strings.TrimSpace(v)
	port = DefaultPort
	var rest string
	if strings.HasPrefix(v, "[") {
		end := strings.IndexByte(v, ']')
		if end < 0 {
			return "", 0, fmt.Errorf("unclosed [ in %q", v)
		}
		relay, rest = v[:end+1], v[end+1:]
		if !validLiteral(relay) {
			return "", 0, fmt.Errorf("%q is not an IP address", relay)
		}
	} else {
		var ok bool
		relay, rest, ok = strings.Cut(v, ":")
		if ok {
			rest = ":" + rest
		}
		relay = strings.TrimSpace(relay)
		if relay != "" && !validHost(relay) {
			return "", 0, fmt.Errorf("%q is not a host name", relay)
		}
	}
	if rest != "" {
		p, ok := strings.CutPrefix(rest, ":")
		if !ok {
			return "", 0, fmt.Errorf("junk %q after the relay", rest)
		}
		p = strings.TrimSpace(p)
		if p != "" {
			n, err := strconv.Atoi(p)
			if err != nil || n < 1 || n > 65535 {
				return "", 0, fmt.Errorf("bad port %q", p)
			}
			port = n
		}
	}
	return relay, port, nil
}

// validLiteral reports whether s is "[address]" with an IPv4 or IPv6
// address inside (an "IPv6:" prefix, as in RFC 5321, is allowed).
func validLiteral(s string) bool {
	_, err := LiteralAddr(s)
	return err == nil
}

// LiteralAddr returns the address inside "[address]".
func LiteralAddr(s string) (netip.Addr, error) {
	inner, ok := strings.CutPrefix(s, "[")
	inner, ok2 := strings.CutSuffix(inner, "]")
	if !ok || !ok2 {
		return netip.Addr{}, fmt.Errorf("%q is not in brackets", s)
	}
	if v6, ok := strings.CutPrefix(inner, "IPv6:"); ok {
		inner = v6
	}
	a, err := netip.ParseAddr(inner)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%q is not an IP address", s)
	}
	return a, nil
}

func validHost(h string) bool {
	if len(h) > 253 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

// Lookup returns the destination for a recipient domain. A domain
// smtproutes does not mention goes to its MX (Relay empty, port 25).
func (r *Routes) Lookup(domain string) Dest {
	d := Dest{Domain: control.NormalizeDomain(domain), Port: DefaultPort}
	if r == nil {
		return d
	}
	if v, _, ok := r.smtp.Lookup(domain); ok {
		d.Relay, d.Port, _ = ParseRelay(v) // checked in Parse
	}
	// smtptls names relays, or recipient domains for MX routes.
	name := d.Relay
	if name == "" {
		name = d.Domain
	}
	if _, _, ok := r.tls.Lookup(name); ok {
		d.RequireTLS = true
	}
	if r.authErr != nil {
		d.Wait = fmt.Sprintf("4.3.5 %v: SMTP mail waits until it is fixed", r.authErr)
	}
	if d.Relay != "" {
		relay := strings.ToLower(d.Relay)
		c, ok := r.auth[relay+":"+strconv.Itoa(d.Port)]
		if !ok {
			c, ok = r.auth[relay]
		}
		if ok {
			d.Auth = &c
			d.RequireTLS = true
		}
	}
	return d
}

// loadAuth reads smtpauth: "relay:user:password" or
// "relay:port:user:password" lines, the relay spelled as in smtproutes
// (a host name or "[address]"). A line with a port is for that port of
// the relay only and wins over a line without one, which is for every
// port. A field after the relay that is all digits is the port, so a
// user name of digits alone needs the port written before it. The
// password may contain colons. The file holds secrets, so it must not be
// readable by group or others; if it is, it is refused (an error, so
// SMTP mail waits) rather than used.
func loadAuth(ctl *control.Dir) (map[string]Credentials, error) {
	path := ctl.File("smtpauth")
	fi, err := os.Stat(path)
	if err != nil {
		if os.IsNotExist(err) {
			return map[string]Credentials{}, nil
		}
		return nil, &control.Error{File: "smtpauth", Err: err}
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, &control.Error{File: "smtpauth", Err: fmt.Errorf("mode %04o: readable by others; chmod 600 it", fi.Mode().Perm())}
	}
	lines, err := ctl.List("smtpauth")
	if err != nil {
		return nil, err
	}
	return parseAuth(lines)
}

func parseAuth(lines []string) (map[string]Credentials, error) {
	out := map[string]Credentials{}
	for _, l := range lines {
		var relay, rest string
		if strings.HasPrefix(l, "[") {
			end := strings.Index(l, "]:")
			if end < 0 {
				return nil, &control.Error{File: "smtpauth", Err: fmt.Errorf("a line with no relay:user:password")}
			}
			relay, rest = l[:end+1], l[end+2:]
		} else {
			var ok bool
			relay, rest, ok = strings.Cut(l, ":")
			if !ok {
				return nil, &control.Error{File: "smtpauth", Err: fmt.Errorf("a line with no relay:user:password")}
			}
		}
		user, pass, ok := strings.Cut(rest, ":")
		relay = strings.ToLower(strings.TrimSpace(relay))
		if !ok || relay == "" || user == "" {
			// The line is not quoted in the error: it holds a password.
			return nil, &control.Error{File: "smtpauth", Err: fmt.Errorf("a line with no relay:user:password")}
		}
		if port, err := strconv.Atoi(user); err == nil && isDigits(user) {
			if port < 1 || port > 65535 {
				return nil, &control.Error{File: "smtpauth", Err: fmt.Errorf("relay %s: bad port %q", relay, user)}
			}
			relay += ":" + strconv.Itoa(port)
			if user, pass, ok = strings.Cut(pass, ":"); !ok || user == "" {
				return nil, &control.Error{File: "smtpauth", Err: fmt.Errorf("relay %s: a line with no user:password after the port", relay)}
			}
		}
		if _, dup := out[relay]; !dup {
			out[relay] = Credentials{User: user, Password: pass}
		}
	}
	return out, nil
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
