package bundle

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"hash"
)

// A version 3 (compact) bundle ends with one frame instead of the seal
// and the signature frame: a zstd skippable frame with magic 0x184D2A52
// whose length says what it holds:
//
//	signed:   52 2A 4D 18, length 96, the 32-byte Ed25519 public key,
//	          the 64-byte signature over SigContextCompact followed by
//	          the SHA-256 of every byte of the file before the frame
//	          (104 bytes);
//	unsigned: 52 2A 4D 18, length 32, that SHA-256 (40 bytes).
//
// The signature covers every byte before the frame and any change in
// the frame makes it fail, so a signed compact bundle needs no seal; an
// unsigned one carries the SHA-256 the seal would. zstd's content
// checksum covers the decompressed stream, so the records need no CRC
// and the trailer no SHA-256 (docs/BUNDLES.md, Version 3).
const (
	SigContextCompact = "OMAIL-BUNDLE-SIGNATURE 3\n"
	endMagic          = "\x52\x2a\x4d\x18"
	endSignedLen      = 8 + ed25519.PublicKeySize + ed25519.SignatureSize
	endSumLen         = 8 + sha256.Size
)

// endHead is the first 8 bytes of an end frame of n bytes.
func endHead(n int) []byte {
	return append([]byte(endMagic), byte(n-8), 0, 0, 0)
}

// endFrame is the end frame of a compact bundle whose bytes before it
// hash to sum: signed with key, or, when key is nil, carrying sum.
func endFrame(key ed25519.PrivateKey, sum []byte) []byte {
	if key == nil {
		return append(endHead(endSumLen), sum...)
	}
	b := append(endHead(endSignedLen), key.Public().(ed25519.PublicKey)...)
	return append(b, ed25519.Sign(key, append([]byte(SigContextCompact), sum...))...)
}

// compactEndLen is the length of the end frame tail ends with, 0 when
// it does not end with one (a version 1 or 2 file, or a damaged one).
// A signed frame is tried first: the unsigned frame's first bytes
// would be inside its signature.
func compactEndLen(tail []byte) int {
	for _, n := range []int{endSignedLen, endSumLen} {
		if len(tail) >= n && bytes.Equal(tail[len(tail)-n:len(tail)-n+8], endHead(n)) {
			return n
		}
	}
	return 0
}

// checkCompactEnd checks the end frame of n bytes at the end of tail,
// as checkEnd does.
func checkCompactEnd(sum hash.Hash, tail []byte, n int) (ed25519.PublicKey, error) {
	sum.Write(tail[:len(tail)-n])
	digest := sum.Sum(nil)
	frame := tail[len(tail)-n:]
	if n == endSumLen {
		if !bytes.Equal(frame[8:], digest) {
			return nil, damaged("end frame mismatch: the file was cut or changed after it was written")
		}
		return nil, nil
	}
	pub := append(ed25519.PublicKey(nil), frame[8:8+ed25519.PublicKeySize]...)
	if !ed25519.Verify(pub, append([]byte(SigContextCompact), digest...), frame[8+ed25519.PublicKeySize:]) {
		return nil, damaged("the signature does not match the bundle (cut or changed after it was written)")
	}
	return pub, nil
}
