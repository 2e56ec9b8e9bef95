package unpackcmd

import (
	"bytes"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"omail/lib/bundle"
)

// setup makes a home whose mailspool is inside it.
func setup(t testing.TB) (*Unpacker, string) {
	h := t.TempDir()
	os.MkdirAll(filepath.Join(h, "control"), 0o755)
	os.MkdirAll(filepath.Join(h, "mail"), 0o755)
	os.WriteFile(filepath.Join(h, "control", "me"), []byte("kiosk.example\n"), 0o644)
	os.WriteFile(filepath.Join(h, "control", "mailspool"), []byte(filepath.Join(h, "mail")+"\n"), 0o644)
	var log bytes.Buffer
	return &Unpacker{Home: h, Log: &log, Now: func() time.Time { return time.Unix(1800000000, 0) }}, h
}

type msg struct {
	sender string
	rcpts  []string
	body   string
}

func writeBundle(t testing.TB, path string, msgs []msg) string {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	id := bundle.NewID()
	w, err := bundle.NewWriter(f, bundle.Zstd, bundle.Header{ID: id, Endpoint: "proxy", Created: time.Unix(0, 0)})
	if err != nil {
		t.Fatal(err)
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
	if code := u.Unpack(file, "bob"); code != OK {
		t.Fatalf("exit %d: %s", code, u.Log)
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
	if _, err := os.Stat(filepath.Join(h, SeenDir, id)); err != nil {
		t.Error("id not remembered")
	}
}

func TestUsage(t *testing.T) {
	var log bytes.Buffer
	for _, args := range [][]string{{"omail-unpack"}, {"omail-unpack", "client", "x"}, {"omail-unpack", "proxy"}, {"omail-unpack", "other", "a"}} {
		if code := Run(args, nil, nil, io.Discard, &log); code != Temporary {
			t.Errorf("%q: exit %d", args, code)
		}
	}
	u, h := setup(t)
	file := filepath.Join(h, "in")
	writeBundle(t, file, []msg{{"a", []string{"b"}, "x"}})
	for _, user := range []string{"../x", "a/b", ".", "", "x y"} {
		if user == "" {
			continue
		}
		if code := u.Unpack(file, user); code != Temporary {
			t.Errorf("user %q: exit %d", user, code)
		}
	}
	if _, err := os.Stat(file); err != nil {
		t.Error("FILE touched for a bad user")
	}
}

func TestExpire(t *testing.T) {
	u, h := setup(t)
	seen := filepath.Join(h, SeenDir)
	os.MkdirAll(seen, 0o755)
	old, fresh := bundle.NewID(), bundle.NewID()
	for _, id := range []string{old, fresh, fresh + ".part"} {
		os.WriteFile(filepath.Join(seen, id), nil, 0o644)
	}
	now := u.now()
	os.Chtimes(filepath.Join(seen, old), now.Add(-Horizon-time.Hour), now.Add(-Horizon-time.Hour))
	os.WriteFile(filepath.Join(seen, old+".part"), nil, 0o644)
	os.Chtimes(filepath.Join(seen, old+".part"), now.Add(-2*Horizon), now.Add(-2*Horizon))
	u.expire(seen)
	for _, n := range []string{old, old + ".part"} {
		if _, err := os.Stat(filepath.Join(seen, n)); !os.IsNotExist(err) {
			t.Errorf("%s kept", n)
		}
	}
	for _, n := range []string{fresh, fresh + ".part"} {
		if _, err := os.Stat(filepath.Join(seen, n)); err != nil {
			t.Errorf("%s removed", n)
		}
	}
	// within a day it does not scan again
	os.WriteFile(filepath.Join(seen, old), nil, 0o644)
	os.Chtimes(filepath.Join(seen, old), now.Add(-2*Horizon), now.Add(-2*Horizon))
	u.expire(seen)
	if _, err := os.Stat(filepath.Join(seen, old)); err != nil {
		t.Error("expired again within a day")
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
		if code := u.Unpack(src, "u"); code != OK {
			b.Fatal(code)
		}
	}
}
