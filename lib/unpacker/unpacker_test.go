package unpacker

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"omail/lib/bundle"
	"omail/lib/eventlog"
	"omail/lib/quarantine"
	"omail/lib/seen"
)

// setup makes a home whose mailspool is inside it.
func setup(t testing.TB) (*Unpacker, string) {
	h := t.TempDir()
	os.MkdirAll(filepath.Join(h, "control"), 0o755)
	os.MkdirAll(filepath.Join(h, "mail"), 0o755)
	os.WriteFile(filepath.Join(h, "control", "me"), []byte("kiosk.example\n"), 0o644)
	os.WriteFile(filepath.Join(h, "control", "mailspool"), []byte(filepath.Join(h, "mail")+"\n"), 0o644)
	var log bytes.Buffer
	return &Unpacker{Home: h, Log: eventlog.New(&log, "omail-unpack"), Now: func() time.Time { return time.Unix(1800000000, 0) }}, h
}

// logText is what u has logged, when its log is setup's buffer.
func logText(u *Unpacker) string { return u.Log.Raw().(fmt.Stringer).String() }

// outcome names what an error of Unpack means, as omail-unpack's exit
// code says it: done (0), quarantined (100), temporary (111).
func outcome(err error) string {
	switch {
	case err == nil:
		return "done"
	case errors.Is(err, ErrQuarantined):
		return "quarantined"
	}
	return "temporary"
}

type msg struct {
	sender string
	rcpts  []string
	body   string
}

func writeBundle(t testing.TB, path string, msgs []msg) string {
	return writeSigned(t, path, "proxy", nil, msgs)
}

// writeSigned writes a bundle for endpoint ep, signed with key unless it
// is nil, and returns its id.
func writeSigned(t testing.TB, path, ep string, key ed25519.PrivateKey, msgs []msg) string {
	return writeVersion(t, path, ep, key, bundle.Version, msgs)
}

// writeVersion is writeSigned in format version v.
func writeVersion(t testing.TB, path, ep string, key ed25519.PrivateKey, v int, msgs []msg) string {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	id := bundle.NewID()
	w, err := bundle.NewWriter(f, bundle.Zstd, bundle.Header{ID: id, Endpoint: ep, Created: time.Unix(0, 0), Version: v})
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
	return id
}

func TestClient(t *testing.T) {
	u, h := setup(t)
	file := filepath.Join(h, "in")
	id := writeBundle(t, file, []msg{
		{"a@x", []string{"bob@k"}, "Subject: one\n\nFrom me\n"},
		{"", []string{"bob@k"}, "Subject: two\n\nbye"},
	})
	if err := u.Unpack(file, "bob"); outcome(err) != "done" {
		t.Fatalf("%v: %s", err, logText(u))
	}
	got, _ := os.ReadFile(filepath.Join(h, "mail", "bob"))
	for _, want := range []string{
		"Return-Path: <a@x>\nDelivered-To: bob@k\nReceived: from proxy by kiosk.example with OCMP (omail-unpack bundle " + id + " message 1); ",
		"Subject: one\n\n>From me\n\n",
		"From MAILER-DAEMON ",
		"Return-Path: <>\n",
		"Subject: two\n\nbye\n",
	} {
		if !strings.Contains(string(got), want) {
			t.Errorf("mbox lacks %q:\n%s", want, got)
		}
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Error("FILE not removed")
	}
	if _, err := os.Stat(filepath.Join(h, seen.Dir, id)); err != nil {
		t.Error("id not remembered")
	}
}

// A user name that is no endpoint name is refused, temporarily: FILE
// stays for a corrected dirapi.conf line.
func TestRefusesBadUser(t *testing.T) {
	u, h := setup(t)
	file := filepath.Join(h, "in")
	writeBundle(t, file, []msg{{"a", []string{"b"}, "x"}})
	for _, user := range []string{"../x", "a/b", ".", "x y"} {
		if err := u.Unpack(file, user); outcome(err) != "temporary" || !strings.HasPrefix(err.Error(), "refusing user ") {
			t.Errorf("user %q: %v", user, err)
		}
	}
	if _, err := os.Stat(file); err != nil {
		t.Error("FILE touched for a bad user")
	}
}

func BenchmarkClient(b *testing.B) {
	u, h := setup(b)
	r := rand.New(rand.NewSource(1))
	var msgs []msg
	size := 0
	for size < 64<<20 {
		var m strings.Builder
		fmt.Fprintf(&m, "Subject: %d\n\n", len(msgs))
		n := 1000 + r.Intn(30000)
		for m.Len() < n {
			fmt.Fprintf(&m, "line %d of some text that goes on for a while %x\n", m.Len(), r.Uint32())
		}
		msgs = append(msgs, msg{"a@b", []string{"u@k"}, m.String()})
		size += m.Len()
	}
	src := filepath.Join(h, "src")
	b.SetBytes(int64(size))
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		writeBundle(b, src, msgs)
		os.Remove(filepath.Join(h, "mail", "u"))
		b.StartTimer()
		if err := u.Unpack(src, "u"); outcome(err) != "done" {
			b.Fatal(err)
		}
	}
}

// sealed compresses stream with zstd and seals it as omail-pack would
// (docs/BUNDLES.md, "The seal"), whatever the stream says.
func sealed(t *testing.T, path string, stream string) {
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write([]byte(stream))
	zw.Close()
	sum := sha256.Sum256(buf.Bytes())
	buf.Write([]byte{0x50, 0x2a, 0x4d, 0x18, 40, 0, 0, 0})
	buf.WriteString("OMAILSL1")
	buf.Write(sum[:])
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A bundle whose seal is right but whose stream is damaged (a faulty
// packer) is found while appending: the mailbox is cut back to what it
// was, and the file is quarantined.
func TestClientDamagedStreamCutBack(t *testing.T) {
	u, h := setup(t)
	mb := filepath.Join(h, "mail", "bob")
	old := "From x@y Thu Jan  1 00:00:00 1970\nSubject: old\n\nold mail\n\n"
	os.WriteFile(mb, []byte(old), 0o600)
	id := bundle.NewID()
	rec := func(body string) string {
		head := fmt.Sprintf("M %d 1\nF a@x\nT bob@k\n", len(body))
		return head + body + "\n" + fmt.Sprintf("S %08x\n", crc32.Checksum([]byte(head+body), crc32.MakeTable(crc32.Castagnoli)))
	}
	stream := "OMAIL-BUNDLE 1 " + id + " proxy 0\n" + rec("Subject: 1\n\none\n") + rec("Subject: 2\n\ntwo\n")
	for name, bad := range map[string]string{
		"bad crc":    stream + "M 4 1\nF a@x\nT bob@k\nfour\nS 00000000\n",
		"bad count":  stream + "E 3 " + strings.Repeat("0", 64) + "\n",
		"no trailer": stream,
	} {
		file := filepath.Join(h, strings.ReplaceAll(name, " ", "-"))
		sealed(t, file, bad)
		if err := u.Unpack(file, "bob"); outcome(err) != "quarantined" {
			t.Fatalf("%s: %v: %s", name, err, logText(u))
		}
		if got, _ := os.ReadFile(mb); string(got) != old {
			t.Errorf("%s: mailbox not cut back:\n%s", name, got)
		}
		if _, err := os.Stat(file); !os.IsNotExist(err) {
			t.Errorf("%s: FILE not quarantined", name)
		}
		for _, n := range []string{id, id + ".part"} {
			if _, err := os.Stat(filepath.Join(h, seen.Dir, n)); !os.IsNotExist(err) {
				t.Errorf("%s: %s left behind", name, n)
			}
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(h, quarantine.Dir)); len(ents) != 3 {
		t.Errorf("%d files in quarantine, want 3", len(ents))
	}
}

// A file cut short or altered is found by its seal before the mailbox is
// even opened.
func TestClientBadSealTouchesNothing(t *testing.T) {
	u, h := setup(t)
	file := filepath.Join(h, "in")
	writeBundle(t, file, []msg{{"a@x", []string{"bob@k"}, "Subject: one\n\nhello\n"}})
	data, _ := os.ReadFile(file)
	for i, bad := range [][]byte{data[:len(data)-1], append(append([]byte{}, data[:len(data)-3]...), 0, 0, 0)} {
		os.WriteFile(file, bad, 0o644)
		if err := u.Unpack(file, "bob"); outcome(err) != "quarantined" {
			t.Fatalf("%d: %v: %s", i, err, logText(u))
		}
		if _, err := os.Stat(filepath.Join(h, "mail", "bob")); !os.IsNotExist(err) {
			t.Errorf("%d: mailbox created", i)
		}
	}
}

// The original omail's gzip'd mbox has only gzip's CRC, at its very end:
// damage there is found after every message was appended, and all of
// them are taken back.
func TestClientLegacyDamagedCutBack(t *testing.T) {
	u, h := setup(t)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("From a@x Mon Jan  1 00:00:00 2024\nSubject: legacy-1\n\none\n\nFrom b@x Mon Jan  1 00:00:00 2024\nSubject: legacy-2\n\ntwo\n\n"))
	zw.Close()
	data := gz.Bytes()
	data[len(data)-6] ^= 0x20 // in the CRC-32
	file := filepath.Join(h, "in")
	os.WriteFile(file, data, 0o644)
	if err := u.Unpack(file, "bob"); outcome(err) != "quarantined" {
		t.Fatalf("%v: %s", err, logText(u))
	}
	if got, _ := os.ReadFile(filepath.Join(h, "mail", "bob")); len(got) != 0 {
		t.Errorf("mailbox not cut back:\n%s", got)
	}
	data[len(data)-6] ^= 0x20
	os.WriteFile(file, data, 0o644)
	if err := u.Unpack(file, "bob"); outcome(err) != "done" {
		t.Fatalf("intact: %v: %s", err, logText(u))
	}
	if got, _ := os.ReadFile(filepath.Join(h, "mail", "bob")); !strings.Contains(string(got), "legacy-2") {
		t.Errorf("intact legacy file not delivered:\n%s", got)
	}
}

// writes records each Write.
type writes struct{ w []string }

func (w *writes) Write(p []byte) (int, error) {
	w.w = append(w.w, string(p))
	return len(p), nil
}

// The lines of the messages go out in batches of whole lines, each
// write at most eventlog.BatchSize bytes (atomic on a pipe), all of them before
// Unpack returns.
func TestClientLogBatches(t *testing.T) {
	u, h := setup(t)
	var log writes
	u.Log = eventlog.New(&log, "omail-unpack")
	var msgs []msg
	for i := 0; i < 500; i++ {
		msgs = append(msgs, msg{fmt.Sprintf("sender%d@x", i), []string{"bob@k"}, fmt.Sprintf("Subject: %d\n\nhi\n", i)})
	}
	file := filepath.Join(h, "in")
	id := writeBundle(t, file, msgs)
	if err := u.Unpack(file, "bob"); outcome(err) != "done" {
		t.Fatalf("%v: %s", err, strings.Join(log.w, ""))
	}
	if len(log.w) > 100 {
		t.Errorf("%d writes for 500 messages", len(log.w))
	}
	for _, w := range log.w {
		if !strings.HasSuffix(w, "\n") || len(w) > eventlog.BatchSize && strings.Count(w, "\n") > 1 {
			t.Errorf("write of %d bytes, %d lines, ending %q", len(w), strings.Count(w, "\n"), w[max(0, len(w)-20):])
		}
	}
	all := strings.Join(log.w, "")
	for i := 1; i <= 500; i++ {
		if !strings.Contains(all, fmt.Sprintf("bundle %s: message %d from <sender%d@x>: appended", id, i, i-1)) {
			t.Errorf("no line for message %d", i)
		}
	}
	if !strings.HasSuffix(all, "500 messages delivered to bob\n") {
		t.Errorf("log ends %q", all[len(all)-80:])
	}
}
