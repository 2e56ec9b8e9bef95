package bundle

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"omail/lib/bundle/bundletest"
	"omail/lib/dict"
)

// buildOpts writes sample into a bundle with options o, signed with key
// unless it is nil.
func buildOpts(t testing.TB, o Options, key ed25519.PrivateKey, msgs []msg) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	id := NewID()
	w, err := NewWriterOptions(&buf, o, Header{ID: id, Endpoint: "kiosk1", Created: time.Unix(1700000000, 0)})
	if err != nil {
		t.Fatal(err)
	}
	if key != nil {
		w.Sign(key)
	}
	for _, m := range msgs {
		if err := w.Add(m.sender, m.rcpts, int64(len(m.body)), strings.NewReader(m.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), id
}

func TestDictRoundTrip(t *testing.T) {
	pub, key := newKey(t)
	for _, comp := range []string{Zstd, Best} {
		data, _ := buildOpts(t, Options{Compression: comp, Dict: dict.Current}, key, sample)
		if got := frameDict(data); got != dict.Current {
			t.Fatalf("%s: the frame names dictionary %d, want %d", comp, got, dict.Current)
		}
		h, bodies, err := readAll(data)
		if err != nil {
			t.Fatalf("%s: %v", comp, err)
		}
		if h.Dict != dict.Current || !h.Signer.Equal(pub) || len(bodies) != len(sample) {
			t.Fatalf("%s: header %+v, %d bodies", comp, h, len(bodies))
		}
		for i, m := range sample {
			if bodies[i].body != m.body {
				t.Fatalf("%s: message %d: %q, want %q", comp, i, bodies[i].body, m.body)
			}
		}
		// Without the dictionary the standard decoder cannot read it:
		// the dictionary really is needed, so it must be named.
		d, _ := zstd.NewReader(bytes.NewReader(data))
		if _, err := io.ReadAll(d); !errors.Is(err, zstd.ErrUnknownDictionary) {
			t.Fatalf("%s: read without the dictionary: %v, want unknown dictionary", comp, err)
		}
		d.Close()
	}
	// No dictionary: none named; gzip ignores one.
	if data, _ := buildOpts(t, Options{Compression: Zstd}, nil, sample); frameDict(data) != 0 {
		t.Fatal("a bundle without a dictionary names one")
	}
	if _, err := NewWriterOptions(io.Discard, Options{Dict: 12345}, Header{ID: NewID(), Endpoint: "k"}); err == nil {
		t.Fatal("a dictionary omail lacks was accepted for writing")
	}
}

func TestUnknownDict(t *testing.T) {
	const future = 2000000001
	plain, _ := buildOpts(t, Options{Dict: dict.Current}, nil, sample)
	data := bundletest.Future(t, plain, future, mustDict(t))
	if frameDict(data) != future {
		t.Fatalf("the test bundle names dictionary %d", frameDict(data))
	}
	_, _, err := readAll(data)
	var de *DictError
	if !errors.As(err, &de) || de.ID != future || !errors.Is(err, ErrUnknownDict) || errors.Is(err, ErrDamaged) {
		t.Fatalf("got %v, want the unknown dictionary %d and not damage", err, future)
	}
	if _, _, err := Verify(bytes.NewReader(data)); !errors.Is(err, ErrUnknownDict) {
		t.Fatalf("Verify: %v", err)
	}
	// Damaged as well: damage wins, whatever the frame names. A byte
	// changed in the header can make a frame name a dictionary.
	for _, at := range []int{len(data) / 2, len(data) - 1} {
		bad := bytes.Clone(data)
		bad[at] ^= 0x40
		if _, _, err := readAll(bad); !errors.Is(err, ErrDamaged) {
			t.Fatalf("flip at %d: %v, want damage", at, err)
		}
	}
	if _, _, err := readAll(data[:len(data)-10]); !errors.Is(err, ErrDamaged) {
		t.Fatalf("cut short: %v, want damage", err)
	}
	plain, _ = buildOpts(t, Options{}, nil, sample)
	plain[4] |= 3 // the frame header now claims a 4-byte dictionary id
	if _, _, err := readAll(plain); !errors.Is(err, ErrDamaged) {
		t.Fatalf("descriptor flipped to name a dictionary: %v, want damage", err)
	}
}

func TestFrameDict(t *testing.T) {
	m := []byte{0x28, 0xb5, 0x2f, 0xfd}
	for _, c := range []struct {
		b    []byte
		want uint32
	}{
		{append(m, 0x00, 0x58), 0},                                  // window descriptor, no id
		{append(m, 0x01, 0x58, 0x07), 7},                            // 1-byte id
		{append(m, 0x22, 0x34, 0x12), 0x1234},                       // single segment, 2-byte id
		{append(m, 0x03, 0x58, 0x01, 0x00, 0x6d, 0x6f), 0x6f6d0001}, // 4-byte id
		{append(m, 0x03, 0x58, 0x01), 0},                            // cut short
		{m, 0},
	} {
		if got := frameDict(c.b); got != c.want {
			t.Errorf("frameDict(% x) = %d, want %d", c.b, got, c.want)
		}
	}
}

func mustDict(t testing.TB) []byte {
	b, ok := dict.Get(dict.Current)
	if !ok {
		t.Fatal("no current dictionary")
	}
	return b
}

// FuzzFrameDict: whatever the bytes, frameDict reads only the bytes
// there are, and a zstd frame header written with a dictionary id gives
// that id back.
func FuzzFrameDict(f *testing.F) {
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0x03, 0x58, 0x01, 0x00, 0x6d, 0x6f}, uint32(0x6f6d0001))
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0x22}, uint32(7))
	f.Fuzz(func(t *testing.T, b []byte, id uint32) {
		frameDict(b)
		if id == 0 {
			return
		}
		e, err := zstd.NewWriter(nil, zstd.WithEncoderDictRaw(id, b), zstd.WithEncoderCRC(true))
		if err != nil {
			return // a dictionary klauspost refuses
		}
		if got := frameDict(e.EncodeAll([]byte("Subject: x\n"), nil)); got != id {
			t.Fatalf("frame written with dictionary %d names %d", id, got)
		}
	})
}
