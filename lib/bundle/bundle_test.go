package bundle

import (
	"bytes"
	"compress/gzip"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

type msg struct {
	sender string
	rcpts  []string
	body   string
}

var sample = []msg{
	{"alice@example.org", []string{"bob@kiosk.example"}, "From: alice\nSubject: hi\n\nhello\nFrom the start\n>From quoted\n"},
	{"", []string{"a@x", "b@x", "c@x"}, "Subject: bounce\n\nno trailing newline"},
	{"carol@example.org", []string{"dan@y"}, ""},
	{"e@f", []string{"g@h"}, "\n\n\nS 00000000\nE 1 00\nM 1 1\n"},
}

func build(t testing.TB, comp string, msgs []msg) ([]byte, string) {
	t.Helper()
	return buildWith(t, comp, nil, msgs)
}

// buildWith is build, the bundle signed with key unless it is nil.
func buildWith(t testing.TB, comp string, key ed25519.PrivateKey, msgs []msg) ([]byte, string) {
	t.Helper()
	return buildOpts(t, Options{Compression: comp}, key, msgs)
}

func readAll(data []byte, keys ...ed25519.PublicKey) (Header, []msg, error) {
	r, err := NewReader(bytes.NewReader(data), keys...)
	if err != nil {
		return Header{}, nil, err
	}
	defer r.Close()
	var out []msg
	for {
		m, err := r.Next()
		if err == io.EOF {
			return r.Header, out, nil
		}
		if err != nil {
			return r.Header, out, err
		}
		b, err := io.ReadAll(m.Body)
		if err != nil {
			return r.Header, out, err
		}
		out = append(out, msg{m.Sender, m.Rcpts, string(b)})
	}
}

func TestRoundTrip(t *testing.T) {
	for _, comp := range []string{Zstd, Gzip} {
		data, id := build(t, comp, sample)
		h, got, err := readAll(data)
		if err != nil {
			t.Fatalf("%s: %v", comp, err)
		}
		if h.ID != id || h.Endpoint != "kiosk1" || h.Version != 1 || h.Created.Unix() != 1700000000 {
			t.Errorf("%s: header %+v", comp, h)
		}
		if fmt.Sprint(got) != fmt.Sprint(sample) {
			t.Errorf("%s: got %q", comp, got)
		}
		if _, n, err := Verify(bytes.NewReader(data)); err != nil || n != len(sample) {
			t.Errorf("%s: Verify %d %v", comp, n, err)
		}
	}
}

// TestSkipBodies: Next skips unread bodies and still checks them.
func TestSkipBodies(t *testing.T) {
	data, _ := build(t, Zstd, sample)
	r, err := NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		_, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != len(sample) {
		t.Fatal(n)
	}
}

func mustDamaged(t *testing.T, what string, data []byte) {
	t.Helper()
	_, _, err := Verify(bytes.NewReader(data))
	if !errors.Is(err, ErrDamaged) {
		t.Errorf("%s: Verify says %v, want damaged", what, err)
	}
}

func TestDamage(t *testing.T) {
	for _, comp := range []string{Zstd, Gzip} {
		data, _ := build(t, comp, sample)
		for i := 0; i < 16; i++ {
			mustDamaged(t, fmt.Sprintf("%s cut at %d/16", comp, i), data[:len(data)*i/16])
		}
		for i := 0; i < len(data); i++ {
			bit := byte(1) << (i % 8) // every byte, each bit position somewhere
			d := bytes.Clone(data)
			d[i] ^= bit
			mustDamaged(t, fmt.Sprintf("%s flip %#x at %d", comp, bit, i), d)
		}
		mustDamaged(t, comp+" trailing data", append(bytes.Clone(data), 0))
	}
	mustDamaged(t, "garbage", []byte("this is not a bundle at all\n"))
	mustDamaged(t, "empty", nil)
	var buf bytes.Buffer
	g := gzip.NewWriter(&buf)
	io.WriteString(g, "OMAIL-BUNDLE 2 0123456789abcdef0123456789abcdef k 0\nE 0 x\n")
	g.Close()
	mustDamaged(t, "version 2", buf.Bytes())
}

// TestInnerDamage: framing damage that the compression's own checksum
// cannot see, because the stream was compressed after the damage.
func TestInnerDamage(t *testing.T) {
	data, _ := build(t, Gzip, sample)
	g, _ := gzip.NewReader(bytes.NewReader(data))
	plain, _ := io.ReadAll(g)
	for i := 0; i < len(plain); i++ {
		d := bytes.Clone(plain)
		d[i] ^= 0x04
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		w.Write(d)
		w.Close()
		mustDamaged(t, fmt.Sprintf("plain flip at %d", i), buf.Bytes())
	}
	for i := 0; i < len(plain); i++ {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		w.Write(plain[:i])
		w.Close()
		mustDamaged(t, fmt.Sprintf("plain cut at %d", i), buf.Bytes())
	}
}

func gz(s string) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	io.WriteString(w, s)
	w.Close()
	return buf.Bytes()
}

func TestLegacy(t *testing.T) {
	mbox := "From alice@example.org Mon Jan  1 00:00:00 2024\nSubject: one\n\nbody\n>From quoted\n\n" +
		"From MAILER-DAEMON Mon Jan  1 00:00:00 2024\nSubject: two\n\n\nlast\n\n"
	data := gz(mbox)
	h, got, err := readAll(data)
	if err != nil {
		t.Fatal(err)
	}
	want := []msg{{"alice@example.org", nil, "Subject: one\n\nbody\nFrom quoted\n"}, {"", nil, "Subject: two\n\n\nlast\n"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %q", got)
	}
	if !h.Legacy || !ValidID(h.ID) || !strings.HasPrefix(h.ID, "legacy-") {
		t.Errorf("header %+v", h)
	}
	for i := 1; i < 16; i++ {
		mustDamaged(t, fmt.Sprintf("legacy cut at %d/16", i), data[:len(data)*i/16])
	}
	mustDamaged(t, "gzip of not an mbox", gz("Subject: hello\n\nhi\n"))
}

func TestWriterRefuses(t *testing.T) {
	var buf bytes.Buffer
	if _, err := NewWriter(&buf, Zstd, Header{ID: "x", Endpoint: "k"}); err == nil {
		t.Error("bad id accepted")
	}
	for _, ep := range []string{"", ".", "..", "a/b", "a b", ".x", "a\nb"} {
		if _, err := NewWriter(&buf, Zstd, Header{ID: NewID(), Endpoint: ep}); err == nil {
			t.Errorf("endpoint %q accepted", ep)
		}
	}
	// Each writer is given up (Abort), as omail-pack does, so that its
	// zstd program stops writing into buf.
	w, _ := NewWriter(&buf, Zstd, Header{ID: NewID(), Endpoint: "k"})
	if err := w.Add("a\nb", []string{"c"}, 0, strings.NewReader("")); err == nil {
		t.Error("newline in sender accepted")
	}
	w.Abort()
	w, _ = NewWriter(&buf, Zstd, Header{ID: NewID(), Endpoint: "k"})
	if err := w.Add("a", []string{"c"}, 10, strings.NewReader("short")); err == nil {
		t.Error("short body accepted")
	}
	w.Abort()
}

// checkSeal opens data and checks its seal as omail-unpack client does.
func checkSeal(data []byte, keys ...ed25519.PublicKey) (*Reader, error) {
	r, err := NewReader(bytes.NewReader(data), keys...)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r, r.CheckSeal(bytes.NewReader(data), int64(len(data)))
}

func TestCheckSeal(t *testing.T) {
	for _, comp := range []string{Zstd, Gzip} {
		data, _ := build(t, comp, sample)
		if _, err := checkSeal(data); err != nil {
			t.Fatalf("%s: intact: %v", comp, err)
		}
		// Every cut and every flipped byte past the first block (which
		// NewReader itself may find) is found by the seal alone.
		for i := 1; i < 16; i++ {
			if _, err := checkSeal(data[:len(data)*i/16]); err != nil && !errors.Is(err, ErrDamaged) {
				t.Errorf("%s cut at %d/16: %v", comp, i, err)
			} else if err == nil {
				t.Errorf("%s cut at %d/16: not found", comp, i)
			}
		}
		for i := 0; i < len(data); i++ {
			d := bytes.Clone(data)
			d[i] ^= 0x10
			if _, err := checkSeal(d); err == nil {
				t.Errorf("%s flip at %d: not found", comp, i)
			} else if !errors.Is(err, ErrDamaged) {
				t.Errorf("%s flip at %d: %v", comp, i, err)
			}
		}
	}
	// A legacy file has no seal: its id is the one reading it whole gives.
	data := gz("From alice@example.org Mon Jan  1 00:00:00 2024\nSubject: one\n\nbody\n\n")
	r, err := checkSeal(data)
	if err != nil {
		t.Fatal(err)
	}
	h, _, err := Verify(bytes.NewReader(data))
	if err != nil || r.Header.ID != h.ID || !strings.HasPrefix(h.ID, "legacy-") {
		t.Errorf("legacy id %q, Verify says %q (%v)", r.Header.ID, h.ID, err)
	}
}

// sealedStream compresses a hand-made stream with zstd and seals it, as
// a faulty packer would.
func sealedStream(t *testing.T, stream string) []byte {
	t.Helper()
	z := zstdStream(t, stream)
	sum := sha256.Sum256(z)
	return append(z, seal(Zstd, sum[:])...)
}

// zstdStream is stream compressed into one zstd frame with its content
// checksum, and nothing more: what a faulty packer would write.
func zstdStream(t testing.TB, stream string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf, zstd.WithEncoderCRC(true), zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(zw, stream)
	zw.Close()
	return buf.Bytes()
}

// The trailer's SHA-256 is checked by a reader that has not checked the
// seal first (Verify); after CheckSeal it is only checked for form,
// since the seal (checked again at the end) and the zstd checksum cover
// what it could find.
func TestTrailerSumAfterSeal(t *testing.T) {
	id := NewID()
	rec := "M 4 1\nF a@x\nT b@k\nfour\n"
	head := "OMAIL-BUNDLE 1 " + id + " k 0\n"
	crc := fmt.Sprintf("S %08x\n", crc32.Checksum([]byte("M 4 1\nF a@x\nT b@k\nfour"), castagnoli))
	good := sha256.Sum256([]byte(head + rec + crc))
	readSealed := func(data []byte) error {
		r, err := NewReader(bytes.NewReader(data))
		if err != nil {
			return err
		}
		defer r.Close()
		if err := r.CheckSeal(bytes.NewReader(data), int64(len(data))); err != nil {
			return err
		}
		for {
			m, err := r.Next()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			if _, err := io.Copy(io.Discard, m.Body); err != nil {
				return err
			}
		}
	}
	for _, c := range []struct {
		name           string
		sum            string
		verify, sealed bool // accepted by Verify, by a reader after CheckSeal
	}{
		{"right sum", hex.EncodeToString(good[:]), true, true},
		{"wrong sum", strings.Repeat("0", 64), false, true},
		{"short sum", "00", false, false},
		{"upper-case sum", strings.ToUpper(hex.EncodeToString(good[:])), false, false},
	} {
		data := sealedStream(t, head+rec+crc+"E 1 "+c.sum+"\n")
		if _, _, err := Verify(bytes.NewReader(data)); (err == nil) != c.verify {
			t.Errorf("%s: Verify says %v", c.name, err)
		}
		if err := readSealed(data); (err == nil) != c.sealed {
			t.Errorf("%s: after CheckSeal: %v", c.name, err)
		}
	}
}

// Version 2 is written on request (omail-pack asks for it when an
// envelope address is not ASCII) and read like version 1; version 3 is
// the compact format (compact_test.go); no other version is written.
func TestVersionUTF8(t *testing.T) {
	for _, v := range []int{0, Version, VersionUTF8} {
		var buf bytes.Buffer
		w, err := NewWriter(&buf, Zstd, Header{ID: NewID(), Endpoint: "k1", Created: time.Unix(1700000000, 0), Version: v})
		if err != nil {
			t.Fatal(err)
		}
		body := "Subject: x\n\nhi\n"
		if err := w.Add("jürgen@köln.example", []string{"jörg@bücher.example"}, int64(len(body)), strings.NewReader(body)); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		r, err := NewReader(bytes.NewReader(buf.Bytes()))
		if err != nil {
			t.Fatalf("version %d: %v", v, err)
		}
		want := v
		if v == 0 {
			want = Version
		}
		if r.Header.Version != want {
			t.Errorf("wrote version %d, read %d", v, r.Header.Version)
		}
		m, err := r.Next()
		if err != nil || m.Sender != "jürgen@köln.example" {
			t.Fatalf("version %d: %v %+v", v, err, m)
		}
	}
	if _, err := NewWriter(io.Discard, Zstd, Header{ID: NewID(), Endpoint: "k1", Version: 4}); err == nil {
		t.Error("wrote a version 4 bundle")
	}
	if _, err := NewWriter(io.Discard, Gzip, Header{ID: NewID(), Endpoint: "k1", Version: VersionCompact}); err == nil {
		t.Error("wrote a version 3 bundle in gzip")
	}
}
