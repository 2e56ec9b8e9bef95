package bundle

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
)

// A version 3 (compact) bundle ends with one frame instead of the seal
// and the signature frame: a zstd skippable frame with magic 0x184D2A52
// whose length says what it holds:
//
//	signed:   52 2A 4D 18, length 68, the signer's 4-byte key id
//	          (KeyID), the 64-byte Ed25519 signature over
//	          SigContextCompact followed by the SHA-256 of every byte of
//	          the file before the frame (76 bytes);
//	unsigned: 52 2A 4D 18, length 32, that SHA-256 (40 bytes).
//
// The signature covers every byte before the frame and any change in
// the frame makes it fail, so a signed compact bundle needs no seal; an
// unsigned one carries the SHA-256 the seal would. zstd's content
// checksum covers the decompressed stream, so the records need no CRC
// and the trailer no SHA-256 (docs/BUNDLES.md, Version 3).
//
// The frame names its key by id, not whole: a receiver checks a bundle
// only against the few keys its ocmppeers lists for the endpoint, so
// the id need only pick among those, and the reader is given them
// (NewReader's keys). Every candidate whose id matches is tried; the
// signature is what is trusted, so two keys with one id cost a second
// verification, never a forgery, and a key made to have a listed key's
// id still has to sign as that key.
const (
	SigContextCompact = "OMAIL-BUNDLE-SIGNATURE 3\n"
	KeyIDSize         = 4
	endMagic          = "\x52\x2a\x4d\x18"
	endSignedLen      = 8 + KeyIDSize + ed25519.SignatureSize
	endSumLen         = 8 + sha256.Size
)

// KeyID is the id by which a version 3 end frame names the key that
// signed it: the first 4 bytes of the SHA-256 of the 32-byte public key.
func KeyID(pub ed25519.PublicKey) [KeyIDSize]byte {
	s := sha256.Sum256(pub)
	return [KeyIDSize]byte(s[:KeyIDSize])
}

// ErrUnknownSigner is a version 3 bundle signed by a key whose id is
// none of the keys the reader was given: not damage (whether the file is
// intact cannot be told without the key), but nothing the caller
// trusts signed it.
var ErrUnknownSigner = errors.New("signed by a key the reader was not given")

// SignerError names the key id of a bundle signed by an unknown key.
type SignerError struct{ KeyID [KeyIDSize]byte }

func (e *SignerError) Error() string {
	return fmt.Sprintf("signed by key id %x, which none of the keys given has", e.KeyID[:])
}
func (e *SignerError) Is(t error) bool { return t == ErrUnknownSigner }

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
	id := KeyID(key.Public().(ed25519.PublicKey))
	b := append(endHead(endSignedLen), id[:]...)
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
// as checkEnd does, a signed one against those of keys its key id
// names: a *SignerError when none has it.
func checkCompactEnd(sum hash.Hash, tail []byte, n int, keys []ed25519.PublicKey) (ed25519.PublicKey, error) {
	sum.Write(tail[:len(tail)-n])
	digest := sum.Sum(nil)
	frame := tail[len(tail)-n:]
	if n == endSumLen {
		if !bytes.Equal(frame[8:], digest) {
			return nil, damaged("end frame mismatch: the file was cut or changed after it was written")
		}
		return nil, nil
	}
	id := [KeyIDSize]byte(frame[8 : 8+KeyIDSize])
	msg, sig := append([]byte(SigContextCompact), digest...), frame[8+KeyIDSize:]
	named := false
	for _, k := range keys {
		if len(k) != ed25519.PublicKeySize || KeyID(k) != id {
			continue
		}
		named = true
		if ed25519.Verify(k, msg, sig) {
			return append(ed25519.PublicKey(nil), k...), nil
		}
	}
	if !named {
		return nil, &SignerError{KeyID: id}
	}
	return nil, damaged("the signature does not match the bundle (cut or changed after it was written)")
}
