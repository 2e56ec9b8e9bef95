package unpacker

import (
	"crypto/ed25519"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"omail/lib/bundle"
	"omail/lib/control"
	"omail/lib/ocmpkey"
	"omail/lib/peers"
	"omail/lib/quarantine"
	"omail/lib/safefile"
	"omail/lib/senders"
)

// rules is what decides whether a bundle and each of its messages are
// delivered: who may sign bundles, which senders an endpoint may use,
// how big things may be. They are read before FILE is opened, and a
// control file that cannot be read or parsed keeps FILE (temporary):
// the link fails closed, never open.
type rules struct {
	endpoint  string          // the bundle's endpoint: its directory (proxy), USER (client)
	peers     *peers.Peers    // nil: no ocmppeers (a client then takes every bundle)
	senders   *senders.Policy // nil: no ocmpsenders (any sender is relayed)
	databytes int64           // largest message relayed; 0: no limit
	bound     int64           // largest decompressed stream; 0: none
}

// refused is a bundle the link's rules turn away, to be quarantined.
type refused struct{ why string }

func (r *refused) Error() string { return r.why }

// readRules reads the rules for FILE. A FILE the rules refuse whatever
// it holds (a proxy's FILE outside the endpoints' download directories,
// or no ocmppeers at a proxy) is a *refused error.
func (u *Unpacker) readRules(file, user string) (*rules, error) {
	ctl := control.New(u.Home)
	ru := &rules{endpoint: user}
	if user == "" {
		ep, err := endpointOf(ctl, file)
		if err != nil {
			return nil, err
		}
		ru.endpoint = ep
	}
	p, ok, err := peers.Read(ctl)
	if err != nil {
		return nil, fmt.Errorf("%v; every bundle waits until it is fixed", err)
	}
	if !ok && user == "" {
		u.Log.Printf("no control file %s: this proxy delivers no bundle until it says who may send them, "+
			"one line per endpoint: \"ENDPOINT ed25519:KEY\" with the key omail-pack -keygen prints on the kiosk, "+
			"or \"ENDPOINT -\" for a kiosk whose omail does not sign (docs/omail-unpack.md)", ctl.File(peers.File))
		return nil, &refused{"refused: no control file " + peers.File}
	}
	ru.peers = p
	if user != "" {
		return ru, nil // sender policy and limits are the proxy's
	}
	if ru.senders, _, err = senders.Read(ctl); err != nil {
		return nil, fmt.Errorf("%v; every bundle waits until it is fixed", err)
	}
	if ru.databytes, err = ctl.Int("databytes"); err != nil {
		return nil, err
	}
	max, err := ctl.Int("bundlemax")
	if err != nil {
		return nil, err
	}
	if ru.databytes > 0 {
		ru.bound = bundle.StreamBound(max, ru.databytes)
	}
	return ru, nil
}

// endpointOf is the endpoint a proxy's FILE came from: FILE must be
// <ocmpdir>/<endpoint>/mail/download/<name> (or under ocmpsecuredir),
// where OCMP puts what an endpoint sent. A file anywhere else has no
// endpoint, so no keys that may have signed it: it is refused.
func endpointOf(ctl *control.Dir, file string) (string, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return "", err
	}
	download := filepath.Dir(abs)
	mail := filepath.Dir(download)
	epDir := filepath.Dir(mail)
	ep := filepath.Base(epDir)
	var roots []string
	for _, name := range []string{"ocmpdir", "ocmpsecuredir"} {
		dir, err := ctl.Line(name)
		if err != nil {
			return "", err
		}
		if dir != "" {
			roots = append(roots, dir)
		}
	}
	where := &refused{fmt.Sprintf("refused: not in %s/ENDPOINT/mail/download/, so from no endpoint whose keys could have signed it", roots[0])}
	if filepath.Base(download) != "download" || filepath.Base(mail) != "mail" || bundle.ValidEndpoint(ep) != nil {
		return "", where
	}
	under, err := os.Stat(filepath.Dir(epDir))
	if err != nil {
		return "", where
	}
	for _, root := range roots {
		if fi, err := os.Stat(root); err == nil && os.SameFile(fi, under) {
			return ep, nil
		}
	}
	return "", where
}

// admit checks a bundle whose signature the reader has checked against
// the rules: nil, or why it is refused. The endpoint it was packed for
// (signed, in its header) must be the one it arrived for: at a proxy
// always, at a client when ocmppeers is there (the same rule, with
// USER), so that a bundle signed for alice and put in bob's download
// directory is not read into bob's mailbox.
func (ru *rules) admit(h bundle.Header, proxy bool) error {
	if !h.Legacy && h.Endpoint != ru.endpoint {
		switch {
		case proxy:
			return &refused{fmt.Sprintf("refused: packed for endpoint %s, arrived under %s", h.Endpoint, ru.endpoint)}
		case ru.peers != nil:
			return &refused{fmt.Sprintf("refused: packed for endpoint %s, handed to user %s", h.Endpoint, ru.endpoint)}
		}
	}
	return ru.admitSigner(h.Signer)
}

// admitSigner checks who signed a bundle (nil: nobody) against the
// rules: nil, or why it is refused.
func (ru *rules) admitSigner(signer ed25519.PublicKey) error {
	if ru.peers == nil || ru.peers.Accepts(ru.endpoint, signer) {
		return nil
	}
	if signer == nil {
		return &refused{fmt.Sprintf("refused: unsigned, and %s does not take unsigned bundles from endpoint %s (\"%s -\")", peers.File, ru.endpoint, ru.endpoint)}
	}
	return &refused{fmt.Sprintf("refused: signed by %s, a key %s does not list for endpoint %s", ocmpkey.FormatPublic(signer), peers.File, ru.endpoint)}
}

// keys are the keys that may sign the endpoint's bundles: the
// candidates a version 3 bundle's key id picks from. None without
// ocmppeers: a client that takes every bundle cannot check a version 3
// signature, so it takes none of those (unknownKeyID).
func (ru *rules) keys() []ed25519.PublicKey {
	if ru.peers == nil {
		return nil
	}
	return ru.peers.Keys(ru.endpoint)
}

// unknownKeyID is why a bundle whose key id names none of keys() is
// refused: as admitSigner refuses a key it does not list.
func (ru *rules) unknownKeyID(id [bundle.KeyIDSize]byte) error {
	if ru.peers == nil {
		return &refused{fmt.Sprintf("refused: signed by key id %x, and without %s no key is known to check a version 3 bundle's signature against (list the signer's key for endpoint %s, or for *)", id[:], peers.File, ru.endpoint)}
	}
	return &refused{fmt.Sprintf("refused: signed by key id %x, a key %s does not list for endpoint %s", id[:], peers.File, ru.endpoint)}
}

// quarantineMessage keeps one message of a bundle that is not relayed,
// in quarantine/<bundle id>.<n>: lines saying why and the envelope, then
// the message (keepBody false: only its size, when it is too big to
// keep). A re-run writes the same file again.
func (u *Unpacker) quarantineMessage(h bundle.Header, i int, m *bundle.Message, why string, keepBody bool) (string, error) {
	var head strings.Builder
	fmt.Fprintf(&head, "X-Omail-Quarantined: %s\nX-Omail-Bundle: %s message %d from endpoint %s\nReturn-Path: <%s>\n", why, h.ID, i, h.Endpoint, m.Sender)
	for _, r := range m.Rcpts {
		fmt.Fprintf(&head, "X-Omail-Recipient: <%s>\n", r)
	}
	var body io.Reader = strings.NewReader("")
	if keepBody {
		body = m.Body
	} else {
		fmt.Fprintf(&head, "X-Omail-Body: not kept, %d bytes\n", m.Size)
	}
	dir := filepath.Join(u.Home, quarantine.Dir)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", err
	}
	path := filepath.Join(dir, fmt.Sprintf("%s.%d", h.ID, i))
	_, err := safefile.WriteFrom(path, io.MultiReader(strings.NewReader(head.String()), body), 0o640)
	return path, err
}

// seal says, for the log line of a bundle delivered, what vouched for
// it: nothing when no ocmppeers was asked.
func (ru *rules) seal(h bundle.Header) string {
	switch {
	case ru.peers == nil:
		return ""
	case h.Signer == nil:
		return ", unsigned, as " + peers.File + " allows for " + ru.endpoint
	}
	return ", signed by " + ocmpkey.FormatPublic(h.Signer) + ", a key " + peers.File + " lists for " + ru.endpoint
}
