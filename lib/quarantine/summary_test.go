package quarantine

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	h := t.TempDir()
	if s, err := Summarize(h); err != nil || len(s) != 0 {
		t.Fatalf("no quarantine: %v %v", s, err)
	}
	q := filepath.Join(h, Dir)
	os.MkdirAll(q, 0o750)
	write := func(name, content string, age time.Duration) {
		p := filepath.Join(q, name)
		os.WriteFile(p, []byte(content), 0o640)
		at := time.Now().Add(-age)
		os.Chtimes(p, at, at)
	}
	msg := func(why, ep string) string {
		return "X-Omail-Quarantined: " + why + "\nX-Omail-Bundle: 0123 message 1 from endpoint " + ep + "\nReturn-Path: <a@b>\n\nbody\n"
	}
	write("0123.1", msg("old reason", "k1"), 2*time.Hour)
	write("0123.2", msg("endpoint k1 may not send as <ceo@bank.example> (ocmpsenders)", "k1"), time.Hour)
	write("4567.1", msg("too big", "k2"), time.Hour)
	write("bundle.zst.1700000000.42", "\x28\xb5\x2f\xfdjunk", time.Hour)
	write("outbox-k3-1700000000.1.2.3", "From: x\n", time.Hour)
	write("X-Omail-Quarantined: trick", "X-Omail-Quarantined: x\nnot a bundle line\n", time.Hour)
	got, err := Summarize(h)
	if err != nil {
		t.Fatal(err)
	}
	want := []Summary{
		{Kind: "outbox", Endpoint: "k3", Files: 1},
		{Kind: "message", Endpoint: "k1", Files: 2, Why: "endpoint k1 may not send as <ceo@bank.example> (ocmpsenders)"},
		{Kind: "message", Endpoint: "k2", Files: 1, Why: "too big"},
		{Kind: "bundle", Files: 2},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		g := got[i]
		g.Newest = time.Time{}
		if g != want[i] {
			t.Errorf("%d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}
