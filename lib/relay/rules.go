package relay

import (
	"path/filepath"
	"strings"
	"time"

	"omail/lib/clock"
	"omail/lib/control"
	"omail/lib/drac"
)

// Rules are the control files that decide relaying, read once per
// connection.
type Rules struct {
	// rcpt holds the domains we accept mail for: rcpthosts and
	// morercpthosts.cdb when either exists, else locals and the
	// virtualdomains keys (we never accept everything, as qmail does
	// without rcpthosts).
	rcpt     domains
	moreRcpt *control.CDB

	relayClients []clientRule // hosts and networks (clients.go)
	// refused are the lines of relayclients that were ignored, each
	// an error naming the file and the line.
	refused      []error
	relayDomains domains // client host names
	mailFrom     map[string]bool
	mailFromCDB  *control.CDB
	drac         drac.Table // relay after POP/IMAP: $OMAIL_HOME/drac/

	// Now is the clock DRAC records are judged by; nil is the real one.
	Now func() time.Time
}

// domains is a set of domains where an entry ".dom" stands for every
// domain under dom.
type domains map[string]bool

func (s domains) has(d string) bool {
	d = DomainKey(d)
	if d == "" {
		return false
	}
	if s[d] {
		return true
	}
	for i := 0; i < len(d); i++ {
		if d[i] == '.' && s[d[i:]] {
			return true
		}
	}
	return false
}

func domainSet(lines []string) domains {
	s := domains{}
	for _, l := range lines {
		if k := DomainKey(l); k != "" {
			s[k] = true
		}
	}
	return s
}

// Files are the control files Load reads: a caller that keeps Rules
// for many connections reloads them when one of these changes.
var Files = []string{"rcpthosts", "morercpthosts.cdb", "locals", "virtualdomains",
	"relayclients", "relaydomains", "relaymailfrom", "relaymailfrom.cdb", "dracexpiry"}

// Load reads the rules. A control file that exists and cannot be read is
// an error: better a temporary refusal than a wrong answer.
func Load(ctl *control.Dir) (_ *Rules, err error) {
	r := &Rules{}
	defer func() {
		if err != nil {
			r.Close() // the cdb files opened before the error
		}
	}()
	hasRcpt, err := ctl.Exists("rcpthosts")
	if err != nil {
		return nil, err
	}
	if r.moreRcpt, err = ctl.OpenCDB("morercpthosts.cdb"); err != nil {
		return nil, err
	}
	if hasRcpt || r.moreRcpt != nil {
		l, err := ctl.List("rcpthosts")
		if err != nil {
			return nil, err
		}
		r.rcpt = domainSet(l)
	} else {
		l, err := ctl.List("locals")
		if err != nil {
			return nil, err
		}
		r.rcpt = domainSet(l)
		vd, err := ctl.List("virtualdomains")
		if err != nil {
			return nil, err
		}
		for _, v := range vd {
			k, _, _ := strings.Cut(v, ":")
			if k = DomainKey(k); k != "" {
				r.rcpt[k] = true
			}
		}
	}
	cl, _, err := ctl.Entries("relayclients")
	if err != nil {
		return nil, err
	}
	r.relayClients, r.refused = parseRelayClients(cl)
	dl, err := ctl.List("relaydomains")
	if err != nil {
		return nil, err
	}
	for i, d := range dl {
		dl[i], _, _ = strings.Cut(d, ":")
	}
	r.relayDomains = domainSet(dl)
	ml, err := ctl.List("relaymailfrom")
	if err != nil {
		return nil, err
	}
	r.mailFrom = map[string]bool{}
	for _, m := range ml {
		if k := mailFromKey(m); k != "" {
			r.mailFrom[k] = true
		}
	}
	if r.mailFromCDB, err = ctl.OpenCDB("relaymailfrom.cdb"); err != nil {
		return nil, err
	}
	dx, err := ctl.Line("dracexpiry")
	if err == nil {
		r.drac, err = drac.New(filepath.Dir(ctl.Path), dx)
	}
	if err != nil {
		return nil, err
	}
	return r, nil
}

// Refused are the lines of control/relayclients that Load ignored
// because they are no address or network: each error names the file,
// the line and what is wrong, for the log. Such a line grants nothing.
func (r *Rules) Refused() []error { return r.refused }

// Close releases the cdb files.
func (r *Rules) Close() {
	r.moreRcpt.Close()
	r.mailFromCDB.Close()
}

// Accepts reports whether domain is one we take mail for from anyone.
func (r *Rules) Accepts(domain string) (bool, error) {
	d := DomainKey(domain)
	if d == "" {
		return false, nil
	}
	if r.rcpt.has(d) {
		return true, nil
	}
	if r.moreRcpt == nil {
		return false, nil
	}
	if _, ok, err := r.moreRcpt.Get(d); ok || err != nil {
		return ok, err
	}
	for i := 0; i < len(d); i++ {
		if d[i] == '.' {
			if _, ok, err := r.moreRcpt.Get(d[i:]); ok || err != nil {
				return ok, err
			}
		}
	}
	return false, nil
}

// ClientMayRelay reports whether the client, by its IP address
// (TCPREMOTEIP) or its host name (TCPREMOTEHOST, which only tcprules or
// tcpserver without -H sets: we never look names up), is allowed to
// relay, and which rule said so. A recent POP/IMAP login from the
// address (a DRAC record, package drac) comes last, as "drac".
func (r *Rules) ClientMayRelay(ip, host string) (bool, string) {
	if ip != "" {
		if c, ok := relayClient(r.relayClients, ip); ok {
			return true, "relayclients " + c.text
		}
	}
	if host != "" && r.relayDomains.has(host) {
		return true, "relaydomains " + host
	}
	if ip != "" && r.drac.Allows(ip, clock.Now(r.Now)) {
		return true, "drac"
	}
	return false, ""
}

// SenderMayRelay reports whether the envelope sender is listed in
// relaymailfrom.cdb or relaymailfrom, as user@dom or @dom.
func (r *Rules) SenderMayRelay(sender Addr) (bool, error) {
	if sender.Null() || sender.Domain == "" {
		return false, nil
	}
	keys := []string{mailFromKey(sender.String()), "@" + DomainKey(sender.Domain)}
	for _, k := range keys {
		if _, ok, err := r.mailFromCDB.Get(k); ok || err != nil {
			return ok, err
		}
	}
	for _, k := range keys {
		if r.mailFrom[k] {
			return true, nil
		}
	}
	return false, nil
}

// mailFromKey is the form relaymailfrom entries are compared in: the
// whole address lower-cased, the domain as DomainKey has it.
func mailFromKey(a string) string {
	a = strings.TrimSpace(a)
	at := strings.LastIndexByte(a, '@')
	if at < 0 {
		return ""
	}
	d := DomainKey(a[at+1:])
	if d == "" {
		return ""
	}
	return strings.ToLower(a[:at]) + "@" + d
}

// MailFromKey is the cdb key written for a relaymailfrom line.
func MailFromKey(line string) string { return mailFromKey(line) }
