// Package tcprules answers, for one client address, what the rules cdb
// that ucspi-tcp's tcprules writes says: deny, or allow with environment
// variables. It looks the address up exactly as tcpserver -R -H does
// (ucspi-tcp's rules.c), so one tcp.smtp.cdb means the same thing under
// tcpserver and under the resident omail-smtpd.
//
// The cdb format: the key is an address, an address prefix ending in a
// '.' (or ':' for IPv6, as the IPv6 patch of ucspi-tcp does), "=host",
// "info@addr", or the empty key; the value is a sequence of
// NUL-terminated entries, "D" for deny and "+VAR=value" for a variable.
// An allow rule with no variables has an empty value: finding the key
// is what counts.
package tcprules

import (
	"bytes"
	"fmt"

	"github.com/colinmarc/cdb"

	"omail/lib/cdbfile"
)

// Verdict is what the rules say about one client.
type Verdict struct {
	Deny bool
	// Key is the rule that matched ("127.0.0.", "" for the catch-all);
	// Matched is false when no rule matched, which tcpserver treats as
	// allow with no variables.
	Key     string
	Matched bool
	// Env holds the rule's variables as VAR=value, in the rule's order.
	Env []string
}

// Lookup opens the cdb at path, answers for ip and closes it again, as
// tcpserver does for every connection: a cdb rebuilt by tcprules (which
// renames the new file into place) counts from the next connection on.
// A missing or unreadable file is an error; tcpserver drops the
// connection then, and so must the caller.
func Lookup(path, ip string) (Verdict, error) {
	db, err := cdbfile.Open(path)
	if err != nil {
		return Verdict{}, err
	}
	defer db.Close()
	return LookupIn(db, ip)
}

// LookupIn answers for ip from an open rules database.
func LookupIn(db *cdb.CDB, ip string) (Verdict, error) {
	for _, k := range Keys(ip) {
		v, err := db.Get([]byte(k))
		if err != nil {
			return Verdict{}, fmt.Errorf("reading rule %q: %w", k, err)
		}
		// colinmarc/cdb returns nil for a missing key and an empty
		// non-nil slice for a key with an empty value.
		if v != nil {
			verdict := Parse(v)
			verdict.Key, verdict.Matched = k, true
			return verdict, nil
		}
	}
	return Verdict{}, nil
}

// Keys are the keys tcpserver -R -H tries for ip, first match wins: the
// address itself, then every prefix of it that ends in '.' (or ':'),
// longest first, then the empty key. With -H there is no host name to
// try ("=host", "=.dom" and "=" rules are never consulted) and with -R
// no ident ("info@addr" rules neither): omail never looks either up.
// An IPv4 client is looked up in dotted form even when it came in on a
// dual-stack socket, so that rules written for IPv4 apply to it.
func Keys(ip string) []string {
	keys := []string{ip}
	for n := len(ip) - 1; n > 0; n-- {
		if c := ip[n-1]; c == '.' || c == ':' {
			keys = append(keys, ip[:n])
		}
	}
	if ip != "" {
		keys = append(keys, "")
	}
	return keys
}

// Parse reads a rule's value as tcpserver's found() does: entries end
// in NUL, "D" denies, "+VAR=value" sets VAR (split at the first '='),
// anything else, and a last entry without its NUL, is ignored.
func Parse(data []byte) Verdict {
	var v Verdict
	for {
		i := bytes.IndexByte(data, 0)
		if i < 0 {
			return v
		}
		e := data[:i]
		data = data[i+1:]
		switch {
		case len(e) > 0 && e[0] == 'D':
			v.Deny = true
		case len(e) > 0 && e[0] == '+' && bytes.IndexByte(e, '=') > 1:
			v.Env = append(v.Env, string(e[1:]))
		}
	}
}
