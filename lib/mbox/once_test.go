package mbox

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	onceMsg    = "Subject: once\n\nbody\nFrom here\n>From there\nlast line\n"
	onceMarker = "X-Omail-Delivery: 1.2.3.4.abcd/0"
	foreign    = "From other@example.org Mon Jan  5 10:00:00 2026\nSubject: other\n\nnot ours\n\n"
)

var oncePrefix = []string{"Return-Path: <a@b>", "Delivered-To: c@d", onceMarker}

// onceAdd opens path, recovers, adds unless found, commits: one
// delivery attempt, as lib/local makes it.
func onceAdd(t testing.TB, path string, date time.Time) (found bool) {
	t.Helper()
	a, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	msg := strings.NewReader(onceMsg)
	found, err = a.Recover(onceMarker, "a@b", oncePrefix, msg, msg.Size())
	if err != nil {
		a.Abort()
		t.Fatal(err)
	}
	if !found {
		if err := a.Add("a@b", oncePrefix, strings.NewReader(onceMsg), date); err != nil {
			a.Abort()
			t.Fatal(err)
		}
	}
	if err := a.Commit(); err != nil {
		t.Fatal(err)
	}
	return found
}

// wholeCopy is what one Add of the message writes, with the date given.
func wholeCopy(t testing.TB, date time.Time) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "w")
	a, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	a.Add("a@b", oncePrefix, strings.NewReader(onceMsg), date)
	a.Commit()
	b, _ := os.ReadFile(p)
	return string(b)
}

// A second attempt finds the copy the first made, whatever the date on
// its From_ line, and after other mail came; nothing is added.
func TestRecoverFindsWholeCopy(t *testing.T) {
	p := filepath.Join(t.TempDir(), "mbox")
	os.WriteFile(p, []byte(foreign), 0o600)
	if onceAdd(t, p, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Fatal("found a copy in a mailbox without one")
	}
	f, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(foreign)
	f.Close()
	before, _ := os.ReadFile(p)
	if !onceAdd(t, p, time.Now()) {
		t.Fatal("the first copy was not found")
	}
	after, _ := os.ReadFile(p)
	if !bytes.Equal(before, after) {
		t.Fatalf("mailbox changed: %q", after)
	}
	if n := len(readMbox(t, after)); n != 3 {
		t.Fatalf("%d messages", n)
	}
}

// A copy cut short at any byte (a crash while Add was writing) is cut
// off and written again whole: one copy, the mail before it untouched.
func TestRecoverCutsTornCopyAtEveryLength(t *testing.T) {
	date := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	w := wholeCopy(t, date)
	for _, head := range []string{"", foreign, strings.TrimSuffix(foreign, "\n"), "From x Mon Jan  5 10:00:00 2026\nno blank line at the end"} {
		for n := 1; n < len(w); n++ {
			p := filepath.Join(t.TempDir(), "mbox")
			sep := ""
			switch {
			case head == "":
			case strings.HasSuffix(head, "\n\n"):
			case strings.HasSuffix(head, "\n"):
				sep = "\n"
			default:
				sep = "\n\n"
			}
			torn := sep + w[:n]
			os.WriteFile(p, []byte(head+torn), 0o600)
			if onceAdd(t, p, date) {
				t.Fatalf("head %q, %d bytes: a torn copy was taken for a whole one", head, n)
			}
			got, _ := os.ReadFile(p)
			if string(got) != head+sep+w {
				t.Fatalf("head %q, %d bytes: mailbox %q, want %q", head, n, got, head+sep+w)
			}
		}
	}
}

// A torn copy that someone else's mail followed is never cut: a whole
// copy is added after it, the rest untouched.
func TestRecoverLeavesTornCopyInTheMiddle(t *testing.T) {
	date := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	w := wholeCopy(t, date)
	start := w[:len(w)/2] + "\n\n"
	p := filepath.Join(t.TempDir(), "mbox")
	os.WriteFile(p, []byte(start+foreign), 0o600)
	if onceAdd(t, p, date) {
		t.Fatal("a torn copy was taken for a whole one")
	}
	got, _ := os.ReadFile(p)
	if string(got) != start+foreign+w {
		t.Fatalf("mailbox %q", got)
	}
}

// Another delivery's copy (another marker), or the same message without
// the marker, is not ours.
func TestRecoverIgnoresOtherDeliveries(t *testing.T) {
	date := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	other := strings.Replace(wholeCopy(t, date), "abcd/0", "abcd/1", 1)
	p := filepath.Join(t.TempDir(), "mbox")
	os.WriteFile(p, []byte(other), 0o600)
	if onceAdd(t, p, date) {
		t.Fatal("another delivery's copy was taken for ours")
	}
	got, _ := os.ReadFile(p)
	if n := len(readMbox(t, got)); n != 2 {
		t.Fatalf("%d messages", n)
	}
}

// A dotlock left by a killed omail on this host does not hold up the
// next delivery for DotlockStale; one of a live process, or of a
// process on another host, does.
func TestDotlockOfDeadProcessBroken(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "mbox")
	old := LockTimeout
	LockTimeout = 100 * time.Millisecond
	defer func() { LockTimeout = old }()
	// A pid that is gone: a child that has exited and been reaped.
	dead := deadPid(t)
	os.WriteFile(p+".lock", []byte(strconv.Itoa(dead)+" "+hostname()+"\n"), 0o600)
	a, err := Open(p)
	if err != nil {
		t.Fatalf("dead holder's dotlock: %v", err)
	}
	a.Commit()
	for _, content := range []string{
		strconv.Itoa(os.Getpid()) + " " + hostname() + "\n", // alive
		strconv.Itoa(dead) + " elsewhere.example\n",         // another host
		strconv.Itoa(dead) + "\n",                           // an older omail's, or another program's
	} {
		os.WriteFile(p+".lock", []byte(content), 0o600)
		if a, err := Open(p); err == nil {
			a.Abort()
			t.Fatalf("dotlock %q was broken", content)
		}
	}
}

func deadPid(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

// FuzzRecover: whatever a mailbox holds, one attempt (Recover, then Add
// unless found) leaves it holding a whole copy, which the next attempt
// finds; and it only ever cuts what could be the start of our copy,
// never other mail.
func FuzzRecover(f *testing.F) {
	date := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	w := wholeCopy(f, date)
	for _, s := range []string{"", foreign, w, w[:40], foreign + w[:70], w + foreign, "Fro", foreign + "From", w[:len(w)-1], "\n\nFrom a@b x\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "mbox")
		os.WriteFile(p, data, 0o600)
		onceAdd(t, p, date)
		got, _ := os.ReadFile(p)
		if !onceAdd(t, p, date) {
			t.Fatalf("no copy found after an attempt: %q", got)
		}
		again, _ := os.ReadFile(p)
		if !bytes.Equal(got, again) {
			t.Fatalf("the second attempt changed the mailbox")
		}
		// Whatever was cut was a beginning of what Add writes.
		keep := 0
		for keep < len(data) && keep < len(got) && data[keep] == got[keep] {
			keep++
		}
		// Some k up to keep is where the cut was made (data[:k] kept).
		for k := keep; ; k-- {
			if cut := string(data[k:]); cut == "" || startOfCopy(w, strings.TrimLeft(cut, "\n")) {
				break
			}
			if k == 0 {
				t.Fatalf("cut %q, not the start of our copy", data[keep:])
			}
		}
	})
}

// startOfCopy: s is the beginning of the copy w, its From_ line's date
// (24 bytes after "From a@b ") aside, which holds no newline.
func startOfCopy(w, s string) bool {
	if len(s) > len(w) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if date := i >= len("From a@b ") && i < len("From a@b ")+24; date && s[i] == '\n' || !date && s[i] != w[i] {
			return false
		}
	}
	return true
}
