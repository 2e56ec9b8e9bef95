package relay

import (
	"unicode/utf8"

	"golang.org/x/net/idna"

	"omail/lib/addr"
	"omail/lib/control"
)

// An internationalised domain can be written with U-labels (bücher.example,
// as an SMTPUTF8 client sends it) or A-labels (xn--bcher-kva.example, as a
// control file or an older client may hold it). Every comparison a relay
// decision rests on (rcpthosts, morercpthosts.cdb, locals, virtualdomains,
// relaydomains, relaymailfrom) is made on one key, the A-label form, so
// that no spelling of a domain gets a different answer than another.
//
// idna.Lookup is UTS #46 processing for lookups: it maps case and
// compatibility forms, normalises to NFC, and refuses what IDNA 2008 does
// not allow (disallowed code points, bad bidi, hyphens in the wrong places).

// DomainKey is the form domains are compared in: control.NormalizeDomain
// (lower case, one trailing dot removed) and, for a domain that is not
// all ASCII, converted to A-labels. It returns "" for a domain that is not
// ASCII and that IDNA refuses: such a domain matches nothing.
func DomainKey(d string) string {
	d = control.NormalizeDomain(d)
	if addr.ASCII(d) {
		return d
	}
	a, err := idna.Lookup.ToASCII(d)
	if err != nil {
		return ""
	}
	return control.NormalizeDomain(a)
}

// unicodeDomain checks a domain written with at least one byte over 0x7f
// and returns it in the form it takes in the envelope: valid IDNA, as
// U-labels, mapped by UTS #46 (lower case, NFC). ok is false for anything
// that is not UTF-8 or that IDNA refuses.
func unicodeDomain(d string) (u string, ok bool) {
	if !utf8.ValidString(d) {
		return "", false
	}
	a, err := idna.Lookup.ToASCII(control.NormalizeDomain(d))
	if err != nil || !validDomain(a) {
		return "", false
	}
	u, err = idna.Lookup.ToUnicode(a)
	if err != nil {
		return "", false
	}
	return u, true
}

// UTF8 reports whether the address needs SMTPUTF8 (RFC 6531) to be sent
// as it is: a byte over 0x7f in the local part or the domain. A domain
// written as A-labels does not.
func (a Addr) UTF8() bool { return !addr.ASCII(a.Local) || !addr.ASCII(a.Domain) }
