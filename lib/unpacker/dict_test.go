package unpacker

import (
	"os"
	"strings"
	"testing"

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
