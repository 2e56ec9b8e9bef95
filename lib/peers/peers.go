// Package peers is control/ocmppeers: which keys may sign the bundles
// that arrive from each OCMP endpoint.
//
//	# ENDPOINT KEY
//	kiosk1 ed25519:BASE64     bundles under ocmpdir/kiosk1/ signed by this key
//	kiosk1 ed25519:BASE64     ... or this one (a key being rotated in)
//	oldkiosk -                unsigned bundles accepted (an omail without signing)
//	* ed25519:BASE64          this key for every endpoint (a kiosk's proxy)
//
// The file is hand-edited and guards what a proxy relays, so any line it
// does not understand makes the whole file an error (naming the line):
// the caller fails closed, keeping the bundle for when a person fixed it,
// rather than guess what the line meant.
package peers

import (
	"bytes"
	"crypto/ed25519"
	"strings"

	"omail/lib/bundle"
	"omail/lib/control"
	"omail/lib/ocmpkey"
)

// File is the control file's name.
const File = "ocmppeers"

// Any is the endpoint of lines that hold for every endpoint.
const Any = "*"

// Peers is a parsed ocmppeers.
type Peers struct {
	keys     map[string][]ed25519.PublicKey
	unsigned map[string]bool
}

// Parse reads the entries of an ocmppeers file.
func Parse(entries []control.Entry) (*Peers, error) {
	p := &Peers{keys: map[string][]ed25519.PublicKey{}, unsigned: map[string]bool{}}
	for _, e := range entries {
		f := strings.Fields(e.Text)
		if len(f) != 2 {
			return nil, e.Errorf(File, "want \"ENDPOINT ed25519:BASE64\" or \"ENDPOINT -\"")
		}
		ep, k := f[0], f[1]
		if ep != Any {
			if err := bundle.ValidEndpoint(ep); err != nil {
				return nil, e.Errorf(File, "%v", err)
			}
		}
		if k == "-" {
			p.unsigned[ep] = true
			continue
		}
		pub, err := ocmpkey.ParsePublic(k)
		if err != nil {
			return nil, e.Errorf(File, "%v", err)
		}
		p.keys[ep] = append(p.keys[ep], pub)
	}
	return p, nil
}

// Read reads control/ocmppeers. ok is false when there is no such file.
func Read(d *control.Dir) (p *Peers, ok bool, err error) {
	return control.ReadEntries(d, File, Parse)
}

// Keys returns the keys listed for endpoint and then those for every
// endpoint: the candidates a version 3 bundle's key id picks its signer
// from (lib/bundle's NewReader).
func (p *Peers) Keys(endpoint string) []ed25519.PublicKey {
	return append(append([]ed25519.PublicKey(nil), p.keys[endpoint]...), p.keys[Any]...)
}

// Accepts reports whether a bundle from endpoint signed by signer (nil:
// unsigned) may be delivered: signer is listed for the endpoint or for
// every endpoint, or, unsigned, the endpoint (or every endpoint) is
// marked "-".
func (p *Peers) Accepts(endpoint string, signer ed25519.PublicKey) bool {
	if signer == nil {
		return p.unsigned[endpoint] || p.unsigned[Any]
	}
	for _, ep := range []string{endpoint, Any} {
		for _, k := range p.keys[ep] {
			if bytes.Equal(k, signer) {
				return true
			}
		}
	}
	return false
}
