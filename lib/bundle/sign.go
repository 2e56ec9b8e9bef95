package bundle

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"hash"
)

// A signed bundle carries, between its compressed stream and its seal, a
// signature frame that decompressors skip as they skip the seal:
//
//	zstd: a skippable frame, magic 0x184D2A51, 112 bytes: 51 2A 4D 18,
//	      length 104, "OMAILSG1", the 32-byte Ed25519 public key, the
//	      64-byte signature;
//	gzip: an empty member whose comment is "OMAIL-SIG1 ", the public key
//	      and a space and the signature, both in lower-case hex, 225 bytes.
//
// The signature is Ed25519 over SigContext followed by the SHA-256 of
// every byte of the file before the frame: the whole compressed stream,
// so everything the receiver acts on (the header with id and endpoint,
// every envelope and message, the trailer). The seal after it covers the
// frame too. An unsigned bundle (omail before signing) has no frame, and
// the readers of then read a signed one (they skip the frame and check
// the seal over it).
const (
	SigContext   = "OMAIL-BUNDLE-SIGNATURE 1\n"
	sigTag       = "OMAILSG1"
	gzipSigTag   = "OMAIL-SIG1 "
	zstdSigLen   = 8 + len(sigTag) + ed25519.PublicKeySize + ed25519.SignatureSize
	gzipSigLen   = 10 + len(gzipSigTag) + 2*ed25519.PublicKeySize + 1 + 2*ed25519.SignatureSize + 1 + 2 + 8
	maxSigLen    = gzipSigLen
	zstdSigMagic = "\x51\x2a\x4d\x18"
)

// sigFrame is the frame carrying pub and sig, in comp's format.
func sigFrame(comp string, pub ed25519.PublicKey, sig []byte) []byte {
	if comp == Gzip {
		b := []byte{0x1f, 0x8b, 8, 0x10, 0, 0, 0, 0, 0, 0xff}
		b = append(b, gzipSigTag+hex.EncodeToString(pub)+" "+hex.EncodeToString(sig)...)
		b = append(b, 0, 3, 0)
		return append(b, 0, 0, 0, 0, 0, 0, 0, 0)
	}
	b := []byte(zstdSigMagic)
	b = append(b, byte(zstdSigLen-8), 0, 0, 0)
	b = append(b, sigTag...)
	b = append(b, pub...)
	return append(b, sig...)
}

// parseSigFrame reads a signature frame: ok is false when frame is not
// one (it has the wrong framing: an unsigned bundle's compressed bytes).
func parseSigFrame(comp string, frame []byte) (pub ed25519.PublicKey, sig []byte, ok bool) {
	if comp == Gzip {
		if len(frame) != gzipSigLen || !bytes.HasPrefix(frame[10:], []byte(gzipSigTag)) {
			return nil, nil, false
		}
		f := frame[10+len(gzipSigTag) : len(frame)-11]
		p, s, found := bytes.Cut(f, []byte(" "))
		pub, err1 := hex.DecodeString(string(p))
		sig, err2 := hex.DecodeString(string(s))
		if !found || err1 != nil || err2 != nil || !lowerHex(string(p)) || !lowerHex(string(s)) ||
			!bytes.Equal(frame, sigFrame(comp, pub, sig)) {
			return nil, nil, false
		}
		return pub, sig, true
	}
	if len(frame) != zstdSigLen || !bytes.Equal(frame[:16], sigFrame(comp, nil, nil)[:16]) {
		return nil, nil, false
	}
	return ed25519.PublicKey(frame[16 : 16+ed25519.PublicKeySize]), frame[16+ed25519.PublicKeySize:], true
}

// signedDigest is what the signature signs, given the SHA-256 of the
// bytes before the frame.
func signedDigest(sum []byte) []byte {
	return append([]byte(SigContext), sum...)
}

// checkEnd checks the end of a file: sum holds the SHA-256 state of
// every byte before tail, and tail the last bytes of the file (at least
// the seal and a signature frame's length, or the whole file when it is
// shorter). It returns the key that signed the file, nil when the file
// is unsigned, or ErrDamaged when the seal or the signature does not
// match; compact says the file ends as version 3 does (one end frame,
// compact.go), not with a seal. A version 3 signature is checked against
// keys (a *SignerError when its key id names none of them); versions 1
// and 2 carry their key.
func checkEnd(comp string, sum hash.Hash, tail []byte, keys []ed25519.PublicKey) (signer ed25519.PublicKey, compact bool, err error) {
	if n := compactEndLen(tail); comp == Zstd && n > 0 {
		signer, err = checkCompactEnd(sum, tail, n, keys)
		return signer, true, err
	}
	signer, err = checkSealEnd(comp, sum, tail)
	return signer, false, err
}

// checkSealEnd is checkEnd for versions 1 and 2: a seal, and a signature
// frame before it if the file is signed.
func checkSealEnd(comp string, sum hash.Hash, tail []byte) (ed25519.PublicKey, error) {
	n, s := zstdSealLen, zstdSigLen
	if comp == Gzip {
		n, s = gzipSealLen, gzipSigLen
	}
	if len(tail) < n {
		return nil, damaged("no seal")
	}
	body := tail[:len(tail)-n]
	var pub ed25519.PublicKey
	var sig, digest []byte
	if len(body) >= s {
		if p, sg, ok := parseSigFrame(comp, body[len(body)-s:]); ok {
			sum.Write(body[:len(body)-s])
			digest = sum.Sum(nil)
			pub, sig = append(ed25519.PublicKey(nil), p...), sg
			body = body[len(body)-s:]
		}
	}
	sum.Write(body)
	if !bytes.Equal(tail[len(tail)-n:], seal(comp, sum.Sum(nil))) {
		return nil, damaged("seal mismatch: the file was cut or changed after it was written")
	}
	if pub != nil && !ed25519.Verify(pub, signedDigest(digest), sig) {
		return nil, damaged("the signature does not match the bundle")
	}
	return pub, nil
}

// maxTail is how many of a file's last bytes checkEnd may need.
const maxTail = maxSealLen + maxSigLen
