package mbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// lockOf is the dotlock an omail process pid of this host and boot
// makes when the mailbox is length bytes long.
func lockOf(pid int, length int64) string {
	return strconv.Itoa(pid) + " " + hostname() + " " + strconv.FormatInt(length, 10) + " " + bootID() + "\n"
}

func shortLockTimeout(t *testing.T) {
	old := LockTimeout
	LockTimeout = 50 * time.Millisecond
	t.Cleanup(func() { LockTimeout = old })
}

// logged records what Logf reports during the test.
func logged(t *testing.T) *[]string {
	var lines []string
	old := Logf
	Logf = func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) }
	t.Cleanup(func() { Logf = old })
	return &lines
}

// The dotlock never exists without its content: at the instant it
// appears (the link), it says who holds it and from which length. A
// kill at any instant of making it leaves either no lock (perhaps a
// unique name beside it, which nobody takes for a lock) or a whole one.
func TestDotlockWholeWhenItAppears(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "mbox")
	const box = "From a@b Thu Jan  1 00:00:00 1970\n\nx\n\n"
	os.WriteFile(p, []byte(box), 0o600)
	var before, after []string
	h := func(point string) {
		switch point {
		case "dotlock-link":
			if _, err := os.Lstat(p + ".lock"); err == nil {
				before = append(before, "lock exists")
			}
		case "dotlock-link-done":
			b, _ := os.ReadFile(p + ".lock")
			after = append(after, string(b))
		}
	}
	a, err := OpenHooked(p, h)
	if err != nil {
		t.Fatal(err)
	}
	if len(before) != 0 || len(after) != 1 || after[0] != lockOf(os.Getpid(), int64(len(box))) {
		t.Fatalf("before the link %q, after it %q, want no lock, then %q", before, after, lockOf(os.Getpid(), int64(len(box))))
	}
	if err := a.Commit(); err != nil {
		t.Fatal(err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(left) != 1 {
		t.Fatalf("files left beside the mailbox: %q", left)
	}
	// What a kill while the lock was being made can leave: the unique
	// name with or without its content, and no lock. Open is not held
	// up by it.
	shortLockTimeout(t)
	os.WriteFile(p+".lock."+hostname()+"."+strconv.Itoa(deadPid(t))+".00aa00aa00aa", nil, 0o600)
	os.WriteFile(p+".lock."+hostname()+"."+strconv.Itoa(deadPid(t))+".00bb00bb00bb", []byte(lockOf(deadPid(t), 0)), 0o600)
	a, err = Open(p)
	if err != nil {
		t.Fatalf("Open beside a killed process's unique names: %v", err)
	}
	a.Abort()
}

// A dead omail holder that had appended (a torn message, or a whole one
// it had not yet unlocked): the next writer cuts the file back to the
// length the dead holder's lock records, and says so; Recover then finds
// no copy, and the retry writes a whole one, once.
func TestTakeoverCutsDeadHoldersAppend(t *testing.T) {
	lines := logged(t)
	date := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	whole := wholeCopy(t, date)
	for name, left := range map[string]string{
		"torn":          whole[:50],
		"whole":         whole,
		"just the From": "From",
	} {
		t.Run(name, func(t *testing.T) {
			*lines = nil
			p := filepath.Join(t.TempDir(), "mbox")
			os.WriteFile(p, []byte(foreign+left), 0o600)
			dead := deadPid(t)
			os.WriteFile(p+".lock", []byte(lockOf(dead, int64(len(foreign)))), 0o600)
			// Unique names a killed process left beside the lock go with
			// the takeover; a live process's stays.
			deadName := p + ".lock." + hostname() + "." + strconv.Itoa(dead) + ".0a0a0a0a0a0a"
			liveName := p + ".lock." + hostname() + "." + strconv.Itoa(os.Getpid()) + ".0b0b0b0b0b0b"
			os.WriteFile(deadName, nil, 0o600)
			os.WriteFile(liveName, nil, 0o600)
			a, err := Open(p)
			if err != nil {
				t.Fatal(err)
			}
			a.Abort()
			if _, err := os.Lstat(deadName); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a dead process's unique name left: %v", err)
			}
			if _, err := os.Lstat(liveName); err != nil {
				t.Errorf("a live process's unique name removed: %v", err)
			}
			os.Remove(liveName)
			if got, _ := os.ReadFile(p); string(got) != foreign {
				t.Fatalf("mailbox after the takeover:\n%q\nwant\n%q", got, foreign)
			}
			if len(*lines) != 1 || !strings.Contains((*lines)[0], fmt.Sprintf("cut %d bytes", len(left))) {
				t.Errorf("logged %q", *lines)
			}
			if onceAdd(t, p, date) {
				t.Fatal("Recover found a copy after the cut")
			}
			if !onceAdd(t, p, date) {
				t.Fatal("the retry's copy not found")
			}
			got, _ := os.ReadFile(p)
			if string(got) != foreign+whole {
				t.Fatalf("mailbox:\n%q\nwant\n%q", got, foreign+whole)
			}
		})
	}
}

// Only a lock of a dead omail of this host and this boot, recording a
// length, is a reason to cut: a live holder's, another host's, a
// foreign program's (mutt-style empty, "0", a pid alone) hold the
// mailbox until they are stale, and a stale one, one of an earlier boot
// or without a length is removed without cutting anything.
func TestTakeoverCutsOnlyDeadOmailHolders(t *testing.T) {
	shortLockTimeout(t)
	lines := logged(t)
	date := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	content := foreign + wholeCopy(t, date)[:60]
	dead := deadPid(t)
	n := strconv.Itoa(len(foreign))
	held := map[string]string{
		"live holder":  lockOf(os.Getpid(), int64(len(foreign))),
		"another host": strconv.Itoa(dead) + " elsewhere.example " + n + " " + bootID() + "\n",
		"mutt-style":   "",
		"zero":         "0",
		"a pid alone":  strconv.Itoa(dead) + "\n",
	}
	removed := map[string]string{
		"earlier boot": strconv.Itoa(dead) + " " + hostname() + " " + n + " 00000000-0000-0000-0000-000000000000\n",
		"no length":    strconv.Itoa(dead) + " " + hostname() + "\n",
	}
	for name, lock := range held {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "mbox")
			os.WriteFile(p, []byte(content), 0o600)
			os.WriteFile(p+".lock", []byte(lock), 0o600)
			if a, err := Open(p); !errors.Is(err, ErrLocked) {
				if err == nil {
					a.Abort()
				}
				t.Fatalf("Open: %v, want ErrLocked", err)
			}
			// Stale by age: removed, nothing cut.
			old := time.Now().Add(-DotlockStale - time.Minute)
			os.Chtimes(p+".lock", old, old)
			openUnchanged(t, p, content)
		})
	}
	for name, lock := range removed {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "mbox")
			os.WriteFile(p, []byte(content), 0o600)
			os.WriteFile(p+".lock", []byte(lock), 0o600)
			openUnchanged(t, p, content)
		})
	}
	if len(*lines) != 0 {
		t.Errorf("logged %q", *lines)
	}
}

// openUnchanged opens the mbox at p, which holds content, and finds it
// unchanged: nothing cut.
func openUnchanged(t *testing.T, p, content string) {
	t.Helper()
	a, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	a.Abort()
	if got, _ := os.ReadFile(p); string(got) != content {
		t.Fatalf("mailbox changed: %q", got)
	}
}

// A lock that another writer made between our look at an abandoned one
// and our taking it aside is not removed: takeOver judges what it took
// aside, puts a live one back, and cuts nothing.
func TestTakeoverPutsLiveLockBack(t *testing.T) {
	p := filepath.Join(t.TempDir(), "mbox")
	os.WriteFile(p, []byte(foreign+"From x"), 0o600)
	live := lockOf(os.Getpid(), int64(len(foreign)))
	os.WriteFile(p+".lock", []byte(live), 0o600)
	a := &Appender{path: p, takeover: -1}
	took, err := a.takeOver(p+".lock", int64(len(foreign)+6))
	if err != nil || took || a.takeover != -1 {
		t.Fatalf("takeOver of a live lock: %v %v, cut to %d", took, err, a.takeover)
	}
	if got, _ := os.ReadFile(p + ".lock"); string(got) != live {
		t.Fatalf("lock after: %q", got)
	}
	if left, _ := filepath.Glob(p + ".lock.*"); len(left) != 0 {
		t.Fatalf("left aside: %q", left)
	}
}

// After Recover cuts a torn copy, our lock records the shorter length:
// if we are killed while appending, the next writer cuts to where our
// copy starts, not to the length at Open (which would leave our copy's
// first bytes).
func TestRecoverCutRecordedInLock(t *testing.T) {
	date := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	whole := wholeCopy(t, date)
	p := filepath.Join(t.TempDir(), "mbox")
	os.WriteFile(p, []byte(foreign+whole[:50]), 0o600)
	a, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p + ".lock"); string(b) != lockOf(os.Getpid(), int64(len(foreign)+50)) {
		t.Fatalf("lock at Open: %q", b)
	}
	msg := strings.NewReader(onceMsg)
	if found, err := a.Recover(onceMarker, "a@b", oncePrefix, msg, msg.Size()); found || err != nil {
		t.Fatalf("Recover: %v %v", found, err)
	}
	if b, _ := os.ReadFile(p + ".lock"); string(b) != lockOf(os.Getpid(), int64(len(foreign))) {
		t.Fatalf("lock after Recover's cut: %q", b)
	}
	a.Abort()
}
