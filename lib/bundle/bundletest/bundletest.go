// Package bundletest makes bundles for tests that the packer never
// writes: Future, a bundle as a newer omail would pack it, with a
// dictionary this omail does not have. It follows docs/BUNDLES.md, not
// lib/bundle's code, so it also checks that the two agree.
package bundletest

import (
	"bytes"
	"crypto/sha256"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// Future returns an unsigned bundle holding the stream of bundle (any
// zstd bundle this omail reads without a dictionary), compressed again
// with a zstd dictionary of the given id, and sealed (version 3: with
// its end frame).
func Future(t testing.TB, bundle []byte, id uint32, dicts ...[]byte) []byte {
	t.Helper()
	d, err := zstd.NewReader(nil, zstd.WithDecoderDicts(dicts...))
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
	if bytes.HasPrefix(stream, []byte("OMAIL-BUNDLE 3 ")) {
		// Version 3, unsigned: a skippable frame, magic 0x184D2A52,
		// length 32, the SHA-256 of every byte before it.
		out = append(out, 0x52, 0x2a, 0x4d, 0x18, 32, 0, 0, 0)
		return append(out, sum[:]...)
	}
	// The seal: a skippable frame, magic 0x184D2A50, length 40,
	// "OMAILSL1" and the SHA-256 of every byte before it.
	out = append(out, 0x50, 0x2a, 0x4d, 0x18, 40, 0, 0, 0)
	out = append(out, "OMAILSL1"...)
	return append(out, sum[:]...)
}
