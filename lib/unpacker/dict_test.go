package unpacker

import (
	"crypto/ed25519"
	"fmt"
	"os"
	"strings"
	"testing"

	"omail/lib/bundle"
	"omail/lib/bundle/bundletest"
)

// A bundle compressed with a dictionary this omail lacks is kept for a
// newer omail (temporary, nothing queued, nothing quarantined), unless
// its signer is refused anyway: then it is quarantined, so that nobody
// can make a proxy keep a file for ever.
func TestProxyUnknownDict(t *testing.T) {
	for _, c := range []struct {
		peers   []string
		outcome string
		log     string
	}{
		{[]string{"proxy -"}, "temporary", "compressed with zstd dictionary 2000000001, which this omail does not have"},
		{[]string{"kiosk1 -"}, "quarantined", "refused: unsigned"},
	} {
		u, h, q, file := proxySetup(t, c.peers...)
		writeBundle(t, file, one)
		data, _ := os.ReadFile(file)
		os.WriteFile(file, bundletest.Future(t, data, 2000000001), 0o644)
		err := u.Unpack(file, "")
		if outcome(err) != c.outcome || !strings.Contains(errText(err), c.log) {
			t.Fatalf("%v: %v (%s), want %s", c.peers, err, outcome(err), c.outcome)
		}
		if n := queued(q); len(n) != 0 {
			t.Errorf("%v: queued %v", c.peers, n)
		}
		_, statErr := os.Stat(file)
		if kept := statErr == nil; kept != (c.outcome == "temporary") || (len(quarantinedFiles(h)) == 0) != kept {
			t.Errorf("%v: FILE kept %v, quarantine %v", c.peers, kept, quarantinedFiles(h))
		}
	}
}

// The same for version 3, whose end frame names its signer by a key id:
// checked, without the dictionary, against the keys ocmppeers lists for
// the endpoint; kept when one of them signed it, refused (naming the
// key id) when none has its id, damage when it does not verify.
func TestProxyUnknownDictCompact(t *testing.T) {
	ks, key := newKey(t)
	_, stranger := newKey(t)
	strangerID := bundle.KeyID(stranger.Public().(ed25519.PublicKey))
	for _, c := range []struct {
		name    string
		peers   []string
		signer  ed25519.PrivateKey
		flip    bool
		outcome string
		log     string
	}{
		{"listed", []string{"proxy " + ks}, key, false, "temporary", "compressed with zstd dictionary 2000000001, which this omail does not have"},
		{"listed for every endpoint", []string{"* " + ks}, key, false, "temporary", "which this omail does not have"},
		{"unknown key", []string{"proxy " + ks}, stranger, false, "quarantined", fmt.Sprintf("endpoint proxy: refused: signed by key id %x, a key ocmppeers does not list for endpoint proxy", strangerID[:])},
		{"listed, a byte changed", []string{"proxy " + ks}, key, true, "quarantined", "damaged"},
	} {
		t.Run(c.name, func(t *testing.T) {
			u, h, q, file := proxySetup(t, c.peers...)
			writeVersion(t, file, "proxy", nil, bundle.VersionCompact, one)
			data, _ := os.ReadFile(file)
			data = bundletest.FutureSigned(t, data, 2000000001, c.signer)
			if c.flip {
				data[len(data)/2] ^= 1
			}
			os.WriteFile(file, data, 0o644)
			err := u.Unpack(file, "")
			if outcome(err) != c.outcome || !strings.Contains(logText(u)+errText(err), c.log) {
				t.Fatalf("%v (%s), want %s; log %s", err, outcome(err), c.outcome, logText(u))
			}
			if n := queued(q); len(n) != 0 {
				t.Errorf("queued %v", n)
			}
			_, statErr := os.Stat(file)
			if kept := statErr == nil; kept != (c.outcome == "temporary") || (len(quarantinedFiles(h)) == 0) != kept {
				t.Errorf("FILE kept %v, quarantine %v", kept, quarantinedFiles(h))
			}
		})
	}
}
