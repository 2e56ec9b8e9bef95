package unpacker

import (
	"bytes"
	"crypto/sha256"
	"os"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
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
		os.WriteFile(file, futureBundle(t, data, 2000000001), 0o644)
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

// futureBundle is a bundle's stream compressed again with a zstd
// dictionary of the given id, which omail does not have, and sealed as
// docs/BUNDLES.md says: what a newer omail may send (unsigned).
func futureBundle(t *testing.T, bundle []byte, id uint32) []byte {
	d, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	stream, err := d.DecodeAll(bundle, nil)
	if err != nil {
		t.Fatal(err)
	}
	e, err := zstd.NewWriter(nil, zstd.WithEncoderDictRaw(id, bytes.Repeat([]byte("Received: from "), 64)), zstd.WithEncoderCRC(true))
	if err != nil {
		t.Fatal(err)
	}
	out := e.EncodeAll(stream, nil)
	sum := sha256.Sum256(out)
	out = append(out, 0x50, 0x2a, 0x4d, 0x18, 40, 0, 0, 0)
	out = append(out, "OMAILSL1"...)
	return append(out, sum[:]...)
}
