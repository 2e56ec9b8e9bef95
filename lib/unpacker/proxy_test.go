package unpacker

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"omail/lib/home"
	"omail/lib/internal/testfake"
	"omail/lib/seen"
)

// fakeQueue is testfake's queue program as the unpacker's QMAILQUEUE;
// a message holding "refuse-me" is refused for good (exit 31).
func fakeQueue(t *testing.T) (*testfake.Queue, home.Env) {
	q := testfake.NewQueue(t)
	q.Refuse("refuse-me", 31)
	return q, home.Env{"QMAILQUEUE=" + q.Prog, "PATH=/usr/bin:/bin"}
}

// queued is what the fake queue accepted, in order.
func queued(q *testfake.Queue) []testfake.QueueRun { return q.Accepted() }

// proxyIn makes h a proxy whose ocmpdir is h/ocmp, with the ocmppeers
// lines given, and returns a FILE in the download directory of endpoint
// "proxy" (the one writeBundle packs for).
func proxyIn(t testing.TB, h string, peerLines ...string) string {
	return proxyInFor(t, h, "proxy", peerLines...)
}

// proxyInFor is proxyIn for endpoint ep.
func proxyInFor(t testing.TB, h, ep string, peerLines ...string) string {
	t.Helper()
	dl := filepath.Join(h, "ocmp", ep, "mail", "download")
	if err := os.MkdirAll(dl, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(h, "control", "ocmpdir"), []byte(filepath.Join(h, "ocmp")+"\n"), 0o644)
	if peerLines != nil {
		os.WriteFile(filepath.Join(h, "control", "ocmppeers"), []byte(strings.Join(peerLines, "\n")+"\n"), 0o644)
	}
	return filepath.Join(dl, "omail-bundle.zst")
}

func TestProxy(t *testing.T) {
	u, h := setup(t)
	q, env := fakeQueue(t)
	u.Env = env
	file := proxyIn(t, h, "proxy -")
	id := writeBundle(t, file, []msg{
		{"a@x", []string{"r1@y", "r2@y"}, "Subject: one\n\nhello\n"},
		{"c@x", []string{"r3@y"}, "Subject: two\n\nrefuse-me\n"},
		{"b@x", []string{"r4@y"}, "Subject: three\n\nbye\n"},
	})
	// The queue fails for the first attempt: 111, FILE stays, nothing kept.
	q.Fail(53)
	if err := u.Unpack(file, ""); outcome(err) != "temporary" {
		t.Fatalf("%v, want a temporary error", err)
	}
	if _, err := os.Stat(file); err != nil {
		t.Fatal("FILE removed after a temporary failure")
	}
	q.Fail(0)
	if err := u.Unpack(file, ""); outcome(err) != "done" {
		t.Fatalf("%v: %s", err, logText(u))
	}
	runs := queued(q)
	if len(runs) != 3 {
		t.Fatalf("queued %d messages, want one, the bounce, three", len(runs))
	}
	m0, e0 := runs[0].Message, runs[0].Envelope
	if !strings.HasPrefix(string(m0), "Received: from proxy by kiosk.example with OCMP (omail-unpack bundle "+id+" message 1); ") ||
		!strings.HasSuffix(string(m0), "\nSubject: one\n\nhello\n") {
		t.Errorf("message: %q", m0)
	}
	if string(e0) != "Fa@x\x00Tr1@y\x00Tr2@y\x00\x00" {
		t.Errorf("envelope: %q", e0)
	}
	// The refused message is bounced to its sender, then the rest goes on.
	m2, e2 := runs[1].Message, runs[1].Envelope
	if !strings.Contains(string(m2), "Subject: failure notice") || !strings.Contains(string(m2), "<r3@y>") || string(e2) != "F\x00Tc@x\x00\x00" {
		t.Errorf("bounce: %q %q", m2, e2)
	}
	m3 := runs[2].Message
	if !strings.Contains(string(m3), "Subject: three") {
		t.Errorf("third message: %q", m3)
	}
	if !strings.Contains(logText(u), "refuses it permanently") {
		t.Errorf("no log of the refusal: %s", logText(u))
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Error("FILE not removed")
	}
}

// TestProxyResume: a part journal from an earlier run makes the re-run
// skip what was queued.
func TestProxyResume(t *testing.T) {
	u, h := setup(t)
	q, env := fakeQueue(t)
	u.Env = env
	file := proxyIn(t, h, "proxy -")
	id := writeBundle(t, file, []msg{
		{"a@x", []string{"r@y"}, "Subject: one\n"},
		{"a@x", []string{"r@y"}, "Subject: two\n"},
	})
	os.MkdirAll(filepath.Join(h, seen.Dir), 0o755)
	os.WriteFile(filepath.Join(h, seen.Dir, id+".part"), []byte("1\n"), 0o644)
	if err := u.Unpack(file, ""); outcome(err) != "done" {
		t.Fatalf("%v: %s", err, logText(u))
	}
	if runs := queued(q); len(runs) != 1 || !strings.Contains(string(runs[0].Message), "Subject: two") {
		t.Errorf("queued %+v", runs)
	}
	if _, err := os.Stat(filepath.Join(h, seen.Dir, id+".part")); !os.IsNotExist(err) {
		t.Error("part journal left")
	}
}
