package bundle

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"omail/lib/bundle/bundletest"
	"omail/lib/dict"
)

// compactOpts are the settings a compact bundle can be written with.
var compactOpts = []Options{
	{Compression: Zstd, Compact: true},
	{Compression: Zstd, Compact: true, Dict: dict.Current},
	{Compression: Best, Compact: true},
	{Compression: Best, Compact: true, Dict: dict.Current},
}

func TestCompactRoundTrip(t *testing.T) {
	pub, key := newKey(t)
	for _, o := range compactOpts {
		for _, k := range []ed25519.PrivateKey{nil, key} {
			data, id := buildOpts(t, o, k, sample)
			h, got, err := readAll(data, pub)
			if err != nil {
				t.Fatalf("%+v signed %v: %v", o, k != nil, err)
			}
			if h.Version != VersionCompact || h.ID != id || h.Dict != o.Dict || (k == nil) != (h.Signer == nil) || k != nil && !h.Signer.Equal(pub) {
				t.Fatalf("%+v: header %+v", o, h)
			}
			if len(got) != len(sample) {
				t.Fatalf("%+v: %d messages", o, len(got))
			}
			for i, m := range sample {
				if got[i].body != m.body || got[i].sender != m.sender || strings.Join(got[i].rcpts, ",") != strings.Join(m.rcpts, ",") {
					t.Fatalf("%+v: message %d: %+v, want %+v", o, i, got[i], m)
				}
			}
			// The client hook's way: the end checked first.
			r, err := checkSeal(data, pub)
			if err != nil {
				t.Fatalf("%+v: CheckSeal: %v", o, err)
			}
			r.Close()
			// The end frame is what docs/BUNDLES.md says.
			n := endSumLen
			if k != nil {
				n = endSignedLen
			}
			if !bytes.Equal(data[len(data)-n:len(data)-n+8], []byte{0x52, 0x2a, 0x4d, 0x18, byte(n - 8), 0, 0, 0}) {
				t.Fatalf("%+v: end % x", o, data[len(data)-n:])
			}
			if k != nil {
				if n != 76 || !bytes.Equal(data[len(data)-68:len(data)-64], keyIDOf(pub)) {
					t.Fatalf("%+v: end % x, want the key id % x", o, data[len(data)-n:], keyIDOf(pub))
				}
			}
		}
	}
}

// The standard tool reads a compact bundle: the stream is the text
// docs/BUNDLES.md shows, the end frame skipped.
func TestCompactZstdTool(t *testing.T) {
	_, key := newKey(t)
	dir := t.TempDir()
	df := filepath.Join(dir, "dict")
	d, _ := dict.Get(dict.Current)
	if err := os.WriteFile(df, d, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, o := range compactOpts {
		data, id := buildOpts(t, o, key, sample[:1])
		cmd := exec.Command("zstd", "-dc", "-D", df)
		cmd.Stdin = bytes.NewReader(data)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%+v: zstd -dc: %v", o, err)
		}
		m := sample[0]
		want := "OMAIL-BUNDLE 3 " + id + " kiosk1 1700000000\nM 59 1\nF " + m.sender + "\nT " + m.rcpts[0] + "\n" + m.body + "\nE 1\n"
		if string(out) != want {
			t.Fatalf("%+v: zstd -dc gave\n%q\nwant\n%q", o, out, want)
		}
	}
}

// Every single-byte change and every truncation of a small compact
// bundle, signed or not, is refused, by Verify and by CheckSeal.
//
// A change in a signed frame's key id makes it name another key: with
// the signer's key the only candidate, an unknown signer (refused as
// such by omail-unpack, exit 100 as for damage); with a key of that id
// among the candidates too, the signature does not verify under it:
// damage.
func TestCompactDamage(t *testing.T) {
	pub, key := newKey(t)
	for _, k := range []ed25519.PrivateKey{nil, key} {
		for _, o := range []Options{{Compact: true}, {Compact: true, Dict: dict.Current}} {
			data, _ := buildOpts(t, o, k, sample[:2])
			idAt := len(data) - endSignedLen + 8
			for i := range data {
				for _, x := range []byte{0x01, 0x80, 0xff} {
					bad := bytes.Clone(data)
					bad[i] ^= x
					if k != nil && i >= idAt && i < idAt+KeyIDSize {
						mustFail(t, ErrUnknownSigner, bad, []ed25519.PublicKey{pub}, "key id byte %d ^ %#x (%+v)", i, x, o)
						continue
					}
					mustRefuse(t, bad, []ed25519.PublicKey{pub}, "byte %d ^ %#x (%+v, signed %v)", i, x, o, k != nil)
				}
			}
			for n := 0; n < len(data); n++ {
				mustRefuse(t, data[:n], []ed25519.PublicKey{pub}, "cut to %d of %d bytes (%+v, signed %v)", n, len(data), o, k != nil)
			}
		}
	}
}

// collidingKeys are two keys whose key ids are the same (found by
// trying seeds: 4 bytes collide after some 2^16 keys).
func collidingKeys(t testing.TB) (ed25519.PrivateKey, ed25519.PrivateKey) {
	t.Helper()
	seed := func(i int) []byte {
		s := sha256.Sum256(fmt.Appendf(nil, "omail key id collision %d", i))
		return s[:]
	}
	a, b := ed25519.NewKeyFromSeed(seed(45800)), ed25519.NewKeyFromSeed(seed(64934))
	if pa, pb := a.Public().(ed25519.PublicKey), b.Public().(ed25519.PublicKey); KeyID(pa) != KeyID(pb) || pa.Equal(pb) {
		t.Fatalf("keys %x and %x, ids %x and %x: not two keys of one id", pa, pb, KeyID(pa), KeyID(pb))
	}
	return a, b
}

// The reader tries every candidate key the frame's id names, in any
// order, and takes the one the signature verifies under; a bundle whose
// id names no candidate is an unknown signer, not damage, whatever its
// state; a key made to share a listed key's id signs nothing for it.
func TestCompactKeyID(t *testing.T) {
	a, b := collidingKeys(t)
	pa, pb := a.Public().(ed25519.PublicKey), b.Public().(ed25519.PublicKey)
	other, _ := newKey(t)
	data, _ := buildOpts(t, Options{Compact: true}, a, sample)
	for _, keys := range [][]ed25519.PublicKey{{pa}, {pb, pa}, {pa, pb}, {other, pb, other, pa}} {
		h, _, err := readAll(data, keys...)
		if err != nil || !h.Signer.Equal(pa) {
			t.Fatalf("candidates %x: signer %x, %v", keys, h.Signer, err)
		}
		r, err := checkSeal(data, keys...)
		if err != nil || !r.Header.Signer.Equal(pa) {
			t.Fatalf("candidates %x: CheckSeal: %v", keys, err)
		}
	}
	// b shares a's id but did not sign.
	mustRefuse(t, data, []ed25519.PublicKey{pb}, "only the other key of the id given")
	var se *SignerError
	for _, keys := range [][]ed25519.PublicKey{nil, {other}} {
		mustFail(t, ErrUnknownSigner, data, keys, "candidates %x", keys)
		if _, _, err := Verify(bytes.NewReader(data), keys...); !errors.As(err, &se) || se.KeyID != KeyID(pa) || errors.Is(err, ErrDamaged) {
			t.Fatalf("candidates %x: %v, want the key id %x", keys, err, KeyID(pa))
		}
	}
	if got := fmt.Sprint(se); !strings.Contains(got, fmt.Sprintf("key id %x", keyIDOf(pa))) {
		t.Fatalf("the error %q does not name the key id", got)
	}
	// A key of the wrong size among the candidates is passed over.
	if _, _, err := readAll(data, pa[:31], pa); err != nil {
		t.Fatalf("a short key among the candidates: %v", err)
	}
}

// mustRefuse fails unless data is damage to both ways of reading, with
// keys the candidate signers.
func mustRefuse(t *testing.T, data []byte, keys []ed25519.PublicKey, format string, args ...any) {
	t.Helper()
	mustFail(t, ErrDamaged, data, keys, format, args...)
}

// mustFail fails unless both ways of reading data, with keys the
// candidate signers, fail with want.
func mustFail(t *testing.T, want error, data []byte, keys []ed25519.PublicKey, format string, args ...any) {
	t.Helper()
	if _, _, err := Verify(bytes.NewReader(data), keys...); !errors.Is(err, want) {
		t.Fatalf("Verify: %v, want %v: "+format, append([]any{err, want}, args...)...)
	}
	r, err := NewReader(bytes.NewReader(data), keys...)
	if err == nil {
		err = r.CheckSeal(bytes.NewReader(data), int64(len(data)))
		r.Close()
	}
	if !errors.Is(err, want) {
		t.Fatalf("CheckSeal: %v, want %v: "+format, append([]any{err, want}, args...)...)
	}
}

// keyIDOf is KeyID as docs/BUNDLES.md says it: the first 4 bytes of the
// SHA-256 of the public key.
func keyIDOf(pub ed25519.PublicKey) []byte {
	s := sha256.Sum256(pub)
	return s[:4]
}

// A signature under another key than the one the frame names, or the
// key swapped for another, does not verify; a bundle re-ended unsigned
// is unsigned (whether that is accepted is the receiver's ocmppeers).
func TestCompactWrongKey(t *testing.T) {
	pub, key := newKey(t)
	other, otherKey := newKey(t)
	both := []ed25519.PublicKey{pub, other}
	data, _ := buildOpts(t, Options{Compact: true}, key, sample)
	body := data[:len(data)-endSignedLen]
	sum := sha256.Sum256(body)
	swapped := append(bytes.Clone(body), endHead(endSignedLen)...)
	swapped = append(swapped, keyIDOf(other)...)
	swapped = append(swapped, data[len(data)-ed25519.SignatureSize:]...)
	mustRefuse(t, swapped, both, "the key id swapped")
	// Signed by otherKey, naming key's id.
	forged := append(bytes.Clone(body), endHead(endSignedLen)...)
	forged = append(forged, keyIDOf(pub)...)
	forged = append(forged, ed25519.Sign(otherKey, append([]byte(SigContextCompact), sum[:]...))...)
	mustRefuse(t, forged, both, "signed by another key")
	// A version 1 signature context does not verify as version 3.
	old := append(bytes.Clone(body), endHead(endSignedLen)...)
	old = append(old, keyIDOf(pub)...)
	old = append(old, ed25519.Sign(key, signedDigest(sum[:]))...)
	mustRefuse(t, old, both, "signed with version 1's context")
	unsigned := append(bytes.Clone(body), endFrame(nil, sum[:])...)
	h, _, err := Verify(bytes.NewReader(unsigned), both...)
	if err != nil || h.Signer != nil {
		t.Fatalf("re-ended unsigned: %v, signer %x", err, h.Signer)
	}
}

// A header's version and the file's end agree: version 3 has the end
// frame, versions 1 and 2 the seal.
func TestCompactVersionAndEnd(t *testing.T) {
	id := NewID()
	compress := func(stream string) []byte { return zstdStream(t, stream) }
	v3 := compress("OMAIL-BUNDLE 3 " + id + " k 0\nM 4 1\nF a@x\nT b@k\nfour\nE 1\n")
	sum := sha256.Sum256(v3)
	if _, n, err := Verify(bytes.NewReader(append(bytes.Clone(v3), endFrame(nil, sum[:])...))); err != nil || n != 1 {
		t.Fatalf("a hand-made version 3 bundle: %d, %v", n, err)
	}
	mustRefuse(t, append(bytes.Clone(v3), seal(Zstd, sum[:])...), nil, "version 3 with a seal")
	v1 := sealedStream(t, "OMAIL-BUNDLE 1 "+id+" k 0\nE 0 "+strings.Repeat("0", 64)+"\n")
	v1 = v1[:len(v1)-zstdSealLen]
	sum = sha256.Sum256(v1)
	mustRefuse(t, append(bytes.Clone(v1), endFrame(nil, sum[:])...), nil, "version 1 with a version 3 end")
	for _, bad := range []string{"E 1 " + strings.Repeat("0", 64) + "\n", "E 2\n", "E 1 \n", "S 00000000\nE 1\n"} {
		s := compress("OMAIL-BUNDLE 3 " + id + " k 0\nM 4 1\nF a@x\nT b@k\nfour\n" + bad)
		sum := sha256.Sum256(s)
		// The end is good: the stream's reading finds it.
		if _, _, err := Verify(bytes.NewReader(append(s, endFrame(nil, sum[:])...))); !errors.Is(err, ErrDamaged) {
			t.Fatalf("trailer %q: %v, want damage", bad, err)
		}
	}
}

// A compact bundle naming a dictionary this omail lacks: refused as
// such (kept, exit 111 at omail-unpack) when intact, damage otherwise.
func TestCompactUnknownDict(t *testing.T) {
	const future = 2000000002
	plain, _ := buildOpts(t, Options{Compact: true, Dict: dict.Current}, nil, sample)
	data := bundletest.Future(t, plain, future, mustDict(t))
	var de *DictError
	if _, _, err := Verify(bytes.NewReader(data)); !errors.As(err, &de) || de.ID != future || errors.Is(err, ErrDamaged) {
		t.Fatalf("got %v, want the unknown dictionary %d", err, future)
	}
	for _, at := range []int{len(data) / 2, len(data) - 1, len(data) - endSumLen} {
		bad := bytes.Clone(data)
		bad[at] ^= 0x40
		if _, _, err := Verify(bytes.NewReader(bad)); !errors.Is(err, ErrDamaged) {
			t.Fatalf("flip at %d: %v, want damage", at, err)
		}
	}
	if _, _, err := Verify(bytes.NewReader(data[:len(data)-1])); !errors.Is(err, ErrDamaged) {
		t.Fatalf("cut short: %v, want damage", err)
	}
	// Signed: the end frame is checked against the candidate keys
	// without decompressing anything.
	a, b := collidingKeys(t)
	pa, pb := a.Public().(ed25519.PublicKey), b.Public().(ed25519.PublicKey)
	body := data[:len(data)-endSumLen]
	sum := sha256.Sum256(body)
	signed := append(bytes.Clone(body), endFrame(a, sum[:])...)
	if _, _, err := Verify(bytes.NewReader(signed), pb, pa); !errors.As(err, &de) || de.ID != future || !de.Signer.Equal(pa) {
		t.Fatalf("signed: %v (signer %x), want the unknown dictionary signed by %x", err, de.Signer, pa)
	}
	if _, _, err := Verify(bytes.NewReader(signed), pb); !errors.Is(err, ErrDamaged) {
		t.Fatalf("signed, only another key of the id given: %v, want damage", err)
	}
	if _, _, err := Verify(bytes.NewReader(signed)); !errors.Is(err, ErrUnknownSigner) {
		t.Fatalf("signed, no key given: %v, want an unknown signer", err)
	}
	bad := bytes.Clone(signed)
	bad[len(bad)/2] ^= 0x40
	if _, _, err := Verify(bytes.NewReader(bad), pa); !errors.Is(err, ErrDamaged) {
		t.Fatalf("signed, a flipped byte: %v, want damage", err)
	}
}

// Best without a zstd program it can run is a clear, temporary error:
// none in PATH, or one older than MinZstd.
func TestBestWithoutZstd(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := NewWriterOptions(io.Discard, Options{Compression: Best}, Header{ID: NewID(), Endpoint: "k"})
	if !errors.Is(err, ErrNoZstd) || !strings.Contains(err.Error(), "none in PATH") {
		t.Fatalf("got %v, want ErrNoZstd: none in PATH", err)
	}
	old := t.TempDir()
	os.WriteFile(filepath.Join(old, "zstd"), []byte("#!/bin/sh\necho '*** zstd command line interface 64-bits v1.4.3, by Yann Collet ***'\n"), 0o755)
	t.Setenv("PATH", old)
	_, err = NewWriterOptions(io.Discard, Options{Compression: Best}, Header{ID: NewID(), Endpoint: "k"})
	if !errors.Is(err, ErrNoZstd) || !strings.Contains(err.Error(), "v1.4.3, older than 1.4.4") {
		t.Fatalf("got %v, want ErrNoZstd: too old", err)
	}
}

// A bundle given up (Abort) stops the zstd program and leaves no
// dictionary file behind.
func TestBestAbort(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	w, err := NewWriterOptions(io.Discard, Options{Compression: Best, Dict: dict.Current}, Header{ID: NewID(), Endpoint: "k"})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add("a@x", []string{"b@y"}, 10, strings.NewReader("short")); err == nil {
		t.Fatal("a short body was taken")
	}
	w.Abort()
	if err := w.Close(); err == nil {
		t.Fatal("Close after a failed Add succeeded")
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Fatalf("left behind: %v", ents)
	}
}

// A zstd program that fails makes the bundle fail, saying why: never a
// bundle that is cut short.
func TestBestProgramFails(t *testing.T) {
	const version = "#!/bin/sh\n[ \"$1\" = -V ] && { echo '*** Zstandard CLI (64-bit) v1.5.4, by Yann Collet ***'; exit 0; }\n"
	for _, script := range []string{
		version + "while read -r l; do :; done\necho 'zstd: out of cheese' >&2\nexit 1\n", // after reading
		version + "echo 'zstd: out of cheese' >&2\nexit 1\n",                              // at once
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "zstd"), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		t.Setenv("PATH", dir)
		// A body more than the pipe and the buffer hold fails in Add; a
		// short one in Close, which must still give the complaint.
		for _, body := range []string{strings.Repeat("hello\n", 50000), "hello\n"} {
			for _, comp := range []string{Best, Zstd} {
				w, err := NewWriterOptions(io.Discard, Options{Compression: comp, Dict: dict.Current}, Header{ID: NewID(), Endpoint: "k"})
				if err != nil {
					t.Fatal(err)
				}
				err = w.Add("a@x", []string{"b@y"}, int64(len(body)), strings.NewReader(body))
				if err == nil {
					err = w.Close()
				} else {
					w.Abort()
				}
				if err == nil || !strings.Contains(err.Error(), "out of cheese") {
					t.Fatalf("%s, %q, %d bytes: got %v, want the program's complaint", comp, script, len(body), err)
				}
			}
		}
	}
}

// failAfter accepts n bytes, then fails with ENOSPC: a full disk.
type failAfter struct{ n int }

func (f *failAfter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		w := f.n
		f.n = 0
		return w, syscall.ENOSPC
	}
	f.n -= len(p)
	return len(p), nil
}

// The bundle's file filling the disk under the zstd program is said as
// such, not as the broken pipe the program then dies of.
func TestZstdProgramOutputFails(t *testing.T) {
	body := strings.Repeat("a line of mail that the program compresses well enough\n", 20000) + string(bytes.Repeat([]byte{0x5a, 0x13, 0x77}, 300000))
	w, err := NewWriterOptions(&failAfter{n: 100}, Options{Compression: Zstd}, Header{ID: NewID(), Endpoint: "k"})
	if err != nil {
		t.Fatal(err)
	}
	if w.Encoder() != "the zstd program" {
		t.Fatalf("encoder %s: the zstd program is needed (Debian package zstd)", w.Encoder())
	}
	err = w.Add("a@x", []string{"b@y"}, int64(len(body)), strings.NewReader(body))
	if err == nil {
		err = w.Close()
	} else {
		w.Abort()
	}
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("got %v, want the output's ENOSPC", err)
	}
}

// The default compression runs the zstd program as ZstdArgs says (with
// the dictionary as -D, the size hint as --size-hint), and reads back; without the program it writes
// the same format with the Go encoder.
func TestZstdProgramOrGoEncoder(t *testing.T) {
	real, err := exec.LookPath("zstd")
	if err != nil {
		t.Fatalf("the zstd program (Debian package zstd, installed by the Makefile's deps): %v", err)
	}
	dir := t.TempDir()
	argsFile := filepath.Join(dir, "args")
	wrapper := fmt.Sprintf("#!/bin/sh\n[ \"$1\" = -V ] || printf '%%s\\n' \"$@\" >>%s\nexec %s \"$@\"\n", argsFile, real)
	if err := os.WriteFile(filepath.Join(dir, "zstd"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	// A zstd older than MinZstd (Debian buster's) is not run.
	old := t.TempDir()
	if err := os.WriteFile(filepath.Join(old, "zstd"), []byte("#!/bin/sh\necho '*** zstd command line interface 64-bits v1.3.8, by Yann Collet ***'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path    string
		id      uint32
		hint    int64
		encoder string
		args    []string // nil: the program is not run
	}{
		{dir, 0, 0, "the zstd program", ZstdArgs},
		{dir, 0, 1234, "the zstd program", append([]string{"--size-hint=1234"}, ZstdArgs...)},
		{dir, dict.Current, 0, "the zstd program", append([]string{"-D", "/dev/fd/3"}, ZstdArgs...)},
		{t.TempDir(), 0, 1234, "the Go zstd encoder (no usable zstd program: none in PATH", nil},
		{t.TempDir(), dict.Current, 0, "the Go zstd encoder (no usable zstd program: none in PATH", nil},
		{old, 0, 0, "the Go zstd encoder (no usable zstd program: " + old + "/zstd is v1.3.8, older than 1.4.4)", nil},
	} {
		os.Remove(argsFile)
		t.Setenv("PATH", tc.path)
		var buf bytes.Buffer
		w, err := NewWriterOptions(&buf, Options{Compression: Zstd, Dict: tc.id, SizeHint: tc.hint}, Header{ID: NewID(), Endpoint: "k"})
		if err != nil {
			t.Fatal(err)
		}
		if got := w.Encoder(); !strings.HasPrefix(got, tc.encoder) {
			t.Errorf("dictionary %d, PATH %s: encoder %q, want %q", tc.id, tc.path, got, tc.encoder)
		}
		for _, m := range sample {
			if err := w.Add(m.sender, m.rcpts, int64(len(m.body)), strings.NewReader(m.body)); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		_, got, err := readAll(buf.Bytes())
		if err != nil || !reflect.DeepEqual(got, sample) {
			t.Fatalf("dictionary %d, %s: read back %v, %+v", tc.id, tc.encoder, err, got)
		}
		b, _ := os.ReadFile(argsFile)
		if want := strings.Join(tc.args, "\n"); strings.TrimSuffix(string(b), "\n") != want {
			t.Errorf("dictionary %d: the program was run with %q, want %q", tc.id, b, want)
		}
	}
}

// A zstd -V that fails once (a fork that failed, the program being
// replaced) is asked again next time, not remembered for the life of
// the process.
func TestZstdVersionAskedAgain(t *testing.T) {
	real, err := exec.LookPath("zstd")
	if err != nil {
		t.Fatalf("the zstd program (Debian package zstd): %v", err)
	}
	dir := t.TempDir()
	once := filepath.Join(dir, "failed-once")
	script := fmt.Sprintf("#!/bin/sh\nif [ \"$1\" = -V ] && [ ! -e %s ]; then : >%s; exit 1; fi\nexec %s \"$@\"\n", once, once, real)
	if err := os.WriteFile(filepath.Join(dir, "zstd"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	for i, want := range []string{"the Go zstd encoder (no usable zstd program: " + dir + "/zstd -V does not say its version", "the zstd program"} {
		w, err := NewWriterOptions(io.Discard, Options{Compression: Zstd}, Header{ID: NewID(), Endpoint: "k"})
		if err != nil {
			t.Fatal(err)
		}
		if got := w.Encoder(); !strings.HasPrefix(got, want) {
			t.Errorf("writer %d: %q, want %q", i+1, got, want)
		}
		w.Abort()
	}
}
