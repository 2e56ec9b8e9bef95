package bundle

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"io"
	"slices"
	"testing"

	"omail/lib/bundle/bundletest"
	"omail/lib/dict"
)

// FuzzReader: whatever the bytes, the reader neither panics nor loops,
// reports either an intact bundle or an error, and never hands out a body
// longer than its announced size.
func FuzzReader(f *testing.F) {
	_, key := newKey(f)
	for _, comp := range []string{Zstd, Gzip} {
		data, _ := build(f, comp, sample)
		f.Add(data)
		f.Add(data[:len(data)/2])
		f.Add(buildSigned(f, comp, key, sample[:1]))
	}
	// Dictionaries: one this omail has, and one it does not.
	withDict, _ := buildOpts(f, Options{Dict: dict.Current}, key, sample)
	f.Add(withDict)
	f.Add(bundletest.Future(f, withDict, 2000000001, mustDict(f)))
	// Version 3 (compact), signed and not, with a dictionary and a
	// future one.
	compact, _ := buildOpts(f, Options{Compact: true}, nil, sample)
	f.Add(compact)
	f.Add(compact[:len(compact)-endSumLen])
	compactDict, _ := buildOpts(f, Options{Compact: true, Dict: dict.Current}, key, sample)
	f.Add(compactDict)
	f.Add(bundletest.Future(f, compactDict, 2000000001, mustDict(f)))
	f.Add(gz("From a x\nhello\n\nFrom b y\n>From\n"))
	f.Add(gz("OMAIL-BUNDLE 1 0123456789abcdef0123456789abcdef k 0\nM 3 1\nF a\nT b\nabc\nS 00000000\nE 1 00\n"))
	f.Add([]byte("garbage"))
	pub := key.Public().(ed25519.PublicKey)
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader(bytes.NewReader(data), pub)
		if err != nil {
			return
		}
		defer r.Close()
		for i := 0; ; i++ {
			m, err := r.Next()
			if err != nil {
				// A version 3 end frame whose key id is not pub's: an
				// unknown signer.
				if err != io.EOF && !errors.Is(err, ErrDamaged) && !errors.Is(err, ErrUnknownSigner) {
					t.Fatalf("error neither EOF nor damage from a byte slice: %v", err)
				}
				return
			}
			n, err := io.Copy(io.Discard, m.Body)
			if m.Size >= 0 && n > m.Size {
				t.Fatalf("body %d bytes, announced %d", n, m.Size)
			}
			if err != nil {
				return
			}
		}
	})
}

// FuzzFraming is FuzzReader on the stream itself: the input is
// compressed before reading, so the fuzzer works on the framing lines
// rather than on compressed bytes.
func FuzzFraming(f *testing.F) {
	f.Add([]byte("OMAIL-BUNDLE 1 0123456789abcdef0123456789abcdef k 0\nM 3 1\nF a\nT b\nabc\nS 00000000\nE 1 00\n"))
	f.Add([]byte("OMAIL-BUNDLE 1 0123456789abcdef0123456789abcdef k 0\nM 0 2\nF \nT b\nT c\n\nS 1a2b3c4d\nE 1 00\n"))
	f.Add([]byte("OMAIL-BUNDLE 1 0123456789abcdef0123456789abcdef k 0\nM 18446744073709551616 1\nF a\n"))
	f.Add([]byte("OMAIL-BUNDLE 3 0123456789abcdef0123456789abcdef k 0\nM 3 1\nF a\nT b\nabc\nE 1\n"))
	f.Fuzz(func(t *testing.T, stream []byte) {
		data := gz(string(stream))
		if bytes.HasPrefix(stream, []byte("OMAIL-BUNDLE 3 ")) {
			data = compactFile(t, stream) // version 3 is zstd only
		}
		r, err := NewReader(bytes.NewReader(data))
		if err != nil {
			return
		}
		defer r.Close()
		for {
			m, err := r.Next()
			if err != nil {
				if err != io.EOF && !errors.Is(err, ErrDamaged) {
					t.Fatalf("error neither EOF nor damage from a byte slice: %v", err)
				}
				return
			}
			if len(m.Rcpts) == 0 && m.Size >= 0 {
				t.Fatal("a record without recipients")
			}
			n, err := io.Copy(io.Discard, m.Body)
			if m.Size >= 0 && n > m.Size {
				t.Fatalf("body %d bytes, announced %d", n, m.Size)
			}
			if err != nil {
				return
			}
		}
	})
}

// compactFile compresses stream with zstd and ends it as an unsigned
// version 3 bundle.
func compactFile(t testing.TB, stream []byte) []byte {
	z := zstdStream(t, string(stream))
	sum := sha256.Sum256(z)
	return append(z, endFrame(nil, sum[:])...)
}

// FuzzCompactEnd: checkEnd takes a version 3 end only when it is one
// that the writer makes for the bytes before it, signed by one of the
// candidate keys whose key id it names; a signed end naming none of
// them is an unknown signer, and anything else damage. The candidates
// are two keys of one id and a third.
func FuzzCompactEnd(f *testing.F) {
	a, b := collidingKeys(f)
	_, c := newKey(f)
	keys := []ed25519.PublicKey{b.Public().(ed25519.PublicKey), c.Public().(ed25519.PublicKey), a.Public().(ed25519.PublicKey)}
	body := []byte("compressed bytes")
	sum := sha256.Sum256(body)
	f.Add(append(bytes.Clone(body), endFrame(nil, sum[:])...))
	f.Add(append(bytes.Clone(body), endFrame(a, sum[:])...))
	f.Add(append(bytes.Clone(body), endFrame(b, sum[:])...))
	f.Add(endFrame(a, sum[:]))
	f.Add([]byte(endMagic))
	f.Fuzz(func(t *testing.T, file []byte) {
		tail := file[max(0, len(file)-maxTail):]
		h := sha256.New()
		h.Write(file[:len(file)-len(tail)])
		signer, compact, err := checkEnd(Zstd, h, tail, keys)
		n := compactEndLen(tail)
		var se *SignerError
		if errors.As(err, &se) {
			if n != endSignedLen || !bytes.Equal(file[len(file)-n+8:len(file)-ed25519.SignatureSize], se.KeyID[:]) {
				t.Fatalf("an unknown signer %x from the end %x", se.KeyID, file[len(file)-n:])
			}
			for _, k := range keys {
				if KeyID(k) == se.KeyID {
					t.Fatalf("key id %x called unknown, but it is a candidate's", se.KeyID)
				}
			}
			return
		}
		if err != nil && !errors.Is(err, ErrDamaged) {
			t.Fatalf("neither damage nor an unknown signer: %v", err)
		}
		if err != nil || !compact {
			return
		}
		s := sha256.Sum256(file[:len(file)-n])
		if signer == nil && !bytes.Equal(file[len(file)-n:], endFrame(nil, s[:])) {
			t.Fatalf("unsigned end %x taken for %x", file[len(file)-n:], s)
		}
		if signer != nil && (!ed25519.Verify(signer, append([]byte(SigContextCompact), s[:]...), file[len(file)-ed25519.SignatureSize:]) ||
			KeyID(signer) != [KeyIDSize]byte(file[len(file)-n+8:]) || !slices.ContainsFunc(keys, func(k ed25519.PublicKey) bool { return k.Equal(signer) })) {
			t.Fatal("a signature taken that does not verify, or from a key the frame does not name, or not a candidate")
		}
	})
}
