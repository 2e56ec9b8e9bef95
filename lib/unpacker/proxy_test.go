package unpacker

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"omail/lib/home"
	"omail/lib/seen"
)

// fakeQueue is a queue program that keeps each message and envelope in
// dir, and exits with the code in dir/code (0 when missing). When a
// message holds "refuse-me" it exits 31.
func fakeQueue(t *testing.T, dir string) home.Env {
	script := filepath.Join(dir, "queue")
	os.WriteFile(script, []byte(`#!/bin/sh
d=`+dir+`
n=$(ls $d | grep -c '^msg')
cat >$d/msg$n
tr '\0' '\n' <&1 >$d/env$n
grep -q refuse-me $d/msg$n && exit 31
[ -e $d/code ] && { rm $d/msg$n; exit $(cat $d/code); }
exit 0
`), 0o755)
	return home.Env{"QMAILQUEUE=" + script, "PATH=/usr/bin:/bin"}
}

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
	q := t.TempDir()
	u.Env = fakeQueue(t, q)
	file := proxyIn(t, h, "proxy -")
	id := writeBundle(t, file, []msg{
		{"a@x", []string{"r1@y", "r2@y"}, "Subject: one\n\nhello\n"},
		{"c@x", []string{"r3@y"}, "Subject: two\n\nrefuse-me\n"},
		{"b@x", []string{"r4@y"}, "Subject: three\n\nbye\n"},
	})
	// The queue fails for the first attempt: 111, FILE stays, nothing kept.
	os.WriteFile(filepath.Join(q, "code"), []byte("53"), 0o644)
	if err := u.Unpack(file, ""); outcome(err) != "temporary" {
		t.Fatalf("%v, want a temporary error", err)
	}
	if _, err := os.Stat(file); err != nil {
		t.Fatal("FILE removed after a temporary failure")
	}
	os.Remove(filepath.Join(q, "code"))
	if err := u.Unpack(file, ""); outcome(err) != "done" {
		t.Fatalf("%v: %s", err, logText(u))
	}
	m0, _ := os.ReadFile(filepath.Join(q, "msg0"))
	e0, _ := os.ReadFile(filepath.Join(q, "env0"))
	if !strings.HasPrefix(string(m0), "Received: from proxy by kiosk.example with OCMP (omail-unpack bundle "+id+" message 1); ") ||
		!strings.HasSuffix(string(m0), "\nSubject: one\n\nhello\n") {
		t.Errorf("message: %q", m0)
	}
	if string(e0) != "Fa@x\nTr1@y\nTr2@y\n\n" {
		t.Errorf("envelope: %q", e0)
	}
	// The refused message is bounced to its sender, then the rest goes on.
	m2, _ := os.ReadFile(filepath.Join(q, "msg2"))
	e2, _ := os.ReadFile(filepath.Join(q, "env2"))
	if !strings.Contains(string(m2), "Subject: failure notice") || !strings.Contains(string(m2), "<r3@y>") || string(e2) != "F\nTc@x\n\n" {
		t.Errorf("bounce: %q %q", m2, e2)
	}
	m3, _ := os.ReadFile(filepath.Join(q, "msg3"))
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
	q := t.TempDir()
	u.Env = fakeQueue(t, q)
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
	ents, _ := filepath.Glob(filepath.Join(q, "msg*"))
	m0, _ := os.ReadFile(filepath.Join(q, "msg0"))
	if len(ents) != 1 || !strings.Contains(string(m0), "Subject: two") {
		t.Errorf("queued %v: %q", ents, m0)
	}
	if _, err := os.Stat(filepath.Join(h, seen.Dir, id+".part")); !os.IsNotExist(err) {
		t.Error("part journal left")
	}
}
