package bundle

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"io"
	"strings"
	"testing"
)

func buildSigned(t testing.TB, comp string, key ed25519.PrivateKey, msgs []msg) []byte {
	t.Helper()
	data, _ := buildWith(t, comp, key, msgs)
	return data
}

func newKey(t testing.TB) (ed25519.PublicKey, ed25519.PrivateKey) {
	pub, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return pub, key
}

// resealed replaces the end of a bundle after its compressed stream
// (cut off at len(data)-end) with frame and a fresh seal, as someone
// without the key but knowing the format would.
func resealed(comp string, data []byte, end int, frame []byte) []byte {
	d := append(bytes.Clone(data[:len(data)-end]), frame...)
	s := sha256.Sum256(d)
	return append(d, seal(comp, s[:])...)
}

func TestSigned(t *testing.T) {
	pub, key := newKey(t)
	_, other := newKey(t)
	for _, comp := range []string{Zstd, Gzip} {
		sl, gl := zstdSealLen, zstdSigLen
		if comp == Gzip {
			sl, gl = gzipSealLen, gzipSigLen
		}
		data := buildSigned(t, comp, key, sample)
		h, got, err := readAll(data)
		if err != nil || len(got) != len(sample) || !h.Signer.Equal(pub) {
			t.Fatalf("%s: %v %d messages, signer %x", comp, err, len(got), h.Signer)
		}
		if vh, n, err := Verify(bytes.NewReader(data)); err != nil || n != len(sample) || !vh.Signer.Equal(pub) {
			t.Errorf("%s: Verify %v %d %x", comp, err, n, vh.Signer)
		}
		r, err := checkSeal(data)
		if err != nil || !r.Header.Signer.Equal(pub) {
			t.Errorf("%s: CheckSeal %v", comp, err)
		}
		// Unsigned, as before: no signer.
		plain, _ := build(t, comp, sample)
		if h, _, err := Verify(bytes.NewReader(plain)); err != nil || h.Signer != nil {
			t.Errorf("%s: unsigned: %v %x", comp, err, h.Signer)
		}
		if r, err := checkSeal(plain); err != nil || r.Header.Signer != nil {
			t.Errorf("%s: unsigned CheckSeal: %v", comp, err)
		}
		// Every flipped byte is found, the signature frame's included.
		for i := 0; i < len(data); i++ {
			d := bytes.Clone(data)
			d[i] ^= 0x01
			if _, _, err := Verify(bytes.NewReader(d)); !errors.Is(err, ErrDamaged) {
				t.Errorf("%s flip at %d: %v", comp, i, err)
			}
		}
		// A forger who reseals: the signature cannot be made to match...
		frame := bytes.Clone(data[len(data)-sl-gl : len(data)-sl])
		p, sig, ok := parseSigFrame(comp, frame)
		if !ok || !p.Equal(pub) {
			t.Fatalf("%s: frame %q", comp, frame)
		}
		sig = bytes.Clone(sig)
		sig[3] ^= 1
		bad := resealed(comp, data, sl+gl, sigFrame(comp, pub, sig))
		if _, _, err := Verify(bytes.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "signature does not match") {
			t.Errorf("%s: forged signature: %v", comp, err)
		}
		if _, err := checkSeal(bad); err == nil || !strings.Contains(err.Error(), "signature does not match") {
			t.Errorf("%s: forged signature, CheckSeal: %v", comp, err)
		}
		// ... another key's signature over the same bytes names that key
		// (which the caller's peers do not list) ...
		d := data[:len(data)-sl-gl]
		s := sha256.Sum256(d)
		theirs := resealed(comp, data, sl+gl, sigFrame(comp, other.Public().(ed25519.PublicKey), ed25519.Sign(other, signedDigest(s[:]))))
		if h, _, err := Verify(bytes.NewReader(theirs)); err != nil || !h.Signer.Equal(other.Public().(ed25519.PublicKey)) {
			t.Errorf("%s: re-signed: %v", comp, err)
		}
		// ... and one who strips the signature leaves an unsigned bundle.
		stripped := resealed(comp, data, sl+gl, nil)
		if h, _, err := Verify(bytes.NewReader(stripped)); err != nil || h.Signer != nil {
			t.Errorf("%s: stripped: %v %x", comp, err, h.Signer)
		}
		// A signature moved onto another bundle does not match it.
		moved := resealed(comp, plain, sl, frame)
		if _, _, err := Verify(bytes.NewReader(moved)); err == nil || !strings.Contains(err.Error(), "signature does not match") {
			t.Errorf("%s: moved signature: %v", comp, err)
		}
	}
}

// The signature changing between CheckSeal and the end of the stream
// (the file replaced under the reader) is damage.
func TestSignerChanged(t *testing.T) {
	_, key := newKey(t)
	signed := buildSigned(t, Zstd, key, sample)
	plain, _ := build(t, Zstd, sample)
	r, err := NewReader(bytes.NewReader(plain))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.CheckSeal(bytes.NewReader(signed), int64(len(signed))); err != nil {
		t.Fatal(err)
	}
	for {
		_, err = r.Next()
		if err != nil {
			break
		}
	}
	if err == nil || !strings.Contains(err.Error(), "signature changed") {
		t.Errorf("got %v", err)
	}
}

func TestLimit(t *testing.T) {
	big := msg{"a@b", []string{"c@d"}, strings.Repeat("x", 1<<20)}
	data, _ := build(t, Zstd, []msg{big, big, big})
	if len(data) > 4096 {
		t.Fatalf("3 MiB of x compress to %d bytes", len(data))
	}
	if _, _, err := VerifyLimit(bytes.NewReader(data), 1<<20); !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "decompression bomb") {
		t.Errorf("over the limit: %v", err)
	}
	if _, n, err := VerifyLimit(bytes.NewReader(data), 4<<20); err != nil || n != 3 {
		t.Errorf("under the limit: %v %d", err, n)
	}
	// The limit counts what was decompressed, so reading stops near it.
	r, _ := NewReader(bytes.NewReader(data))
	defer r.Close()
	r.SetLimit(1 << 20)
	var read int64
	for {
		m, err := r.Next()
		if err != nil {
			break
		}
		n, _ := io.Copy(io.Discard, m.Body)
		read += n
	}
	if read > 1<<20+128<<10 {
		t.Errorf("read %d bytes past a limit of 1 MiB", read)
	}
}

func FuzzSigFrame(f *testing.F) {
	pub, key := newKey(f)
	for _, comp := range []string{Zstd, Gzip} {
		f.Add(comp == Gzip, sigFrame(comp, pub, ed25519.Sign(key, []byte("x"))))
	}
	f.Add(false, []byte(zstdSigMagic))
	f.Fuzz(func(t *testing.T, gz bool, frame []byte) {
		comp := Zstd
		if gz {
			comp = Gzip
		}
		p, s, ok := parseSigFrame(comp, frame)
		if ok && !bytes.Equal(sigFrame(comp, p, s), frame) {
			t.Fatalf("%q parses but is not written so", frame)
		}
	})
}
