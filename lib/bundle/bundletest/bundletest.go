// Package bundletest makes bundles for tests that the packer never
// writes: Future, a bundle as a newer omail would pack it, with a
// dictionary this omail does not have. It follows docs/BUNDLES.md, not
// lib/bundle's code, so it also checks that the two agree.
package bundletest

import (
	"bytes"
	"crypto/ed25519"
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
	return FutureSigned(t, bundle, id, nil, dicts...)
}

// FutureSigned is Future, signed with key when bundle is version 3 and
// key is not nil.
func FutureSigned(t testing.TB, bundle []byte, id uint32, key ed25519.PrivateKey, dicts ...[]byte) []byte {
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
	if bytes.HasPrefix(stream, []byte("OMAIL-BUNDLE 3 ")) && key != nil {
		// Version 3, signed: a skippable frame, magic 0x184D2A52,
		// length 68, the first 4 bytes of the SHA-256 of the public
		// key, the Ed25519 signature of "OMAIL-BUNDLE-SIGNATURE 3" LF
		// and the SHA-256 of every byte before the frame.
		kid := sha256.Sum256(key.Public().(ed25519.PublicKey))
		sig := ed25519.Sign(key, append([]byte("OMAIL-BUNDLE-SIGNATURE 3\n"), sum[:]...))
		out = append(out, 0x52, 0x2a, 0x4d, 0x18, 68, 0, 0, 0)
		out = append(out, kid[:4]...)
		return append(out, sig...)
	}
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
