// Package dkim signs the mail omail-deliver sends by SMTP with DKIM
// (RFC 6376; rsa-sha256, and ed25519-sha256 from RFC 8463), with the
// keys control/dkimkeys lists. Canonicalisation and the signature itself
// are github.com/emersion/go-msgauth's; this package decides which
// messages are signed, with which keys, over which header fields, and
// reads the key files as hostile input.
//
// A message is signed as it goes on the wire: the caller writes the
// bytes it will send (CRLF lines, after masquerading, before
// dot-stuffing) into a Signer, and prepends the header fields it
// returns. Only the header is held in memory; the body is hashed as it
// streams past.
package dkim

import (
	"fmt"
	"path/filepath"
	"strings"

	"omail/lib/control"
)

// File is the control file that lists the signing keys.
const File = "dkimkeys"

// Key is one dkimkeys line: the domain that signs (d=), the selector
// (s=) under which its public half is published, and the private key's
// file (absolute, or relative to the control directory).
type Key struct {
	Domain   string
	Selector string
	Path     string
}

// Keys is a loaded dkimkeys file. Several lines for one domain make
// several signatures (an RSA one and an Ed25519 one, as RFC 8463
// suggests while verifiers learn Ed25519, or an old and a new key while
// rotating). A nil *Keys signs nothing.
type Keys struct {
	byDomain map[string][]Key
}

// Load reads control/dkimkeys; a missing file signs nothing. The key
// files are not read here but when a message needs one, so that a key
// that cannot be read holds up only the mail it signs, and a new key
// file is used without a restart.
func Load(ctl *control.Dir) (*Keys, error) {
	lines, err := ctl.List(File)
	if err != nil {
		return nil, err
	}
	return Parse(lines, ctl.Path)
}

// Parse builds Keys from dkimkeys lines, "DOMAIN:SELECTOR:KEYFILE",
// resolving relative key files under dir. A line that does not parse is
// an error naming it: guessing could sign with the wrong key or, worse,
// send unsigned what the administrator meant to sign.
func Parse(lines []string, dir string) (*Keys, error) {
	k := &Keys{byDomain: map[string][]Key{}}
	for _, l := range lines {
		key, err := parseLine(l, dir)
		if err != nil {
			return nil, &control.Error{File: File, Err: fmt.Errorf("line %q: %v", l, err)}
		}
		k.byDomain[key.Domain] = append(k.byDomain[key.Domain], key)
	}
	return k, nil
}

func parseLine(l, dir string) (Key, error) {
	f := strings.SplitN(l, ":", 3)
	if len(f) != 3 {
		return Key{}, fmt.Errorf("want DOMAIN:SELECTOR:KEYFILE")
	}
	domain := control.NormalizeDomain(f[0])
	selector := strings.ToLower(strings.TrimSpace(f[1]))
	path := strings.TrimSpace(f[2])
	if err := CheckName("domain", domain); err != nil {
		return Key{}, err
	}
	if err := CheckName("selector", selector); err != nil {
		return Key{}, err
	}
	if path == "" {
		return Key{}, fmt.Errorf("no key file")
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	return Key{Domain: domain, Selector: selector, Path: path}, nil
}

// CheckName checks a domain or selector: dot-separated labels of ASCII
// letters, digits, hyphens and underscores, as a DNS name under which a
// key is published must be (an internationalised domain is written as
// its xn-- A-label). It keeps anything odd out of d=, s= and the file
// names -dkimkeygen makes from them.
func CheckName(what, s string) error {
	if s == "" || len(s) > 253 {
		return fmt.Errorf("%s %q: empty or too long", what, s)
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%s %q: not a DNS name", what, s)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("%s %q: not a DNS name", what, s)
			}
		}
	}
	return nil
}

// Empty reports whether no message is ever signed.
func (k *Keys) Empty() bool { return k == nil || len(k.byDomain) == 0 }

// For returns the keys that sign mail from domain: those of the domain
// itself if it has any, else those of its nearest listed parent
// (mail.example.org is signed as example.org when only example.org is
// listed, which DMARC's relaxed alignment accepts). None: not signed.
func (k *Keys) For(domain string) []Key {
	if k.Empty() {
		return nil
	}
	d := control.NormalizeDomain(domain)
	for d != "" {
		if keys, ok := k.byDomain[d]; ok {
			return keys
		}
		_, parent, ok := strings.Cut(d, ".")
		if !ok {
			break
		}
		d = parent
	}
	return nil
}
