package mbox

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"omail/lib/crashpoint"

	"golang.org/x/sys/unix"
)

// lockOf is the dotlock process pid (started at start) makes on the
// mailbox at p when it is length bytes long.
func lockOf(t *testing.T, p string, pid int, start string, length int64) string {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return lockWith(pid, start, length, sysIno(st))
}

func lockWith(pid int, start string, length int64, ino uint64) string {
	return fmt.Sprintf("%d %s %020d %s %s %d\n", pid, hostname(), length, bootID(), start, ino)
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

// The dotlock never exists without its content: it appears by a link,
// whole, holding our record; and it is gone before the fcntl lock is.
func TestDotlockWholeWhenItAppears(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "mbox")
	const box = "From a@b Thu Jan  1 00:00:00 1970\n\nx\n\n"
	os.WriteFile(p, []byte(box), 0o600)
	var before, after []string
	fcntlHeld := false
	h := func(point string) {
		switch point {
		case "dotlock-link":
			if _, err := os.Lstat(p + ".lock"); err == nil {
				before = append(before, "lock exists")
			}
		case "dotlock-link-done":
			b, _ := os.ReadFile(p + ".lock")
			after = append(after, string(b))
		case "dotlock-remove-done":
			fcntlHeld = fcntlLocked(t, p)
		}
	}
	a, err := OpenHooked(p, h)
	if err != nil {
		t.Fatal(err)
	}
	want := lockOf(t, p, os.Getpid(), ownStart(), int64(len(box)))
	if len(before) != 0 || len(after) != 1 || after[0] != want {
		t.Fatalf("before the link %q, after it %q, want no lock, then %q", before, after, want)
	}
	if err := a.Commit(); err != nil {
		t.Fatal(err)
	}
	if !fcntlHeld {
		t.Error("the fcntl lock was let go before the dotlock was removed")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 1 {
		t.Fatalf("files left beside the mailbox: %q", left)
	}
}

// fcntlLocked reports whether someone holds a lock on the file at p.
func fcntlLocked(t *testing.T, p string) bool {
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lk := unix.Flock_t{Type: unix.F_RDLCK, Whence: io.SeekStart}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_GETLK, &lk); err != nil {
		t.Fatal(err)
	}
	return lk.Type != unix.F_UNLCK
}

// A writer killed while appending (a torn message, or whole ones it had
// not unlocked): the next writer, whatever it delivers, cuts the file
// back to where the dead writer began, and says so. The dead writer's
// own retry then finds no copy and writes a whole one, once.
func TestTakeoverCutsDeadWritersAppend(t *testing.T) {
	date := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	whole := wholeCopy(t, date)
	for name, left := range map[string]string{
		"torn":          whole[:50],
		"whole":         whole,
		"just the From": "From",
		"a separator":   "\n",
	} {
		t.Run(name, func(t *testing.T) {
			lines := logged(t)
			p := filepath.Join(t.TempDir(), "mbox")
			os.WriteFile(p, []byte(foreign+left), 0o600)
			os.WriteFile(p+".lock", []byte(lockOf(t, p, deadPid(t), "-", int64(len(foreign)))), 0o600)
			// Another message comes first: it must not follow the torn copy.
			add(t, p, "other@x", nil, "Subject: next\n\nnext\n")
			got, _ := os.ReadFile(p)
			if !strings.HasPrefix(string(got), foreign+"From other@x ") {
				t.Fatalf("mailbox after the takeover:\n%q", got)
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
			if msgs := readMbox(t, mustRead(t, p)); len(msgs) != 3 {
				t.Fatalf("%d messages, want 3", len(msgs))
			}
		})
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A real kill: a process appending is killed at mbox-torn, holding both
// locks; the next Open, in this process, cuts its torn copy.
func TestTakeoverAfterRealKill(t *testing.T) {
	lines := logged(t)
	p := filepath.Join(t.TempDir(), "mbox")
	os.WriteFile(p, []byte(foreign), 0o600)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperKilledAppend$")
	cmd.Env = append(os.Environ(), "MBOX_KILLED="+p)
	cmd.Stderr = os.Stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("helper: %v, want killed", err)
	}
	if got := mustRead(t, p); len(got) <= len(foreign) {
		t.Fatalf("the helper appended nothing: %q", got)
	}
	add(t, p, "other@x", nil, "Subject: next\n\nnext\n")
	if msgs := readMbox(t, mustRead(t, p)); len(msgs) != 2 || len(*lines) != 1 {
		t.Fatalf("%d messages, want 2; logged %q", len(msgs), *lines)
	}
}

// TestHelperKilledAppend is not a test: TestTakeoverAfterRealKill runs
// it in another process, which it kills in the middle of a message.
func TestHelperKilledAppend(t *testing.T) {
	p := os.Getenv("MBOX_KILLED")
	if p == "" {
		return
	}
	a, err := OpenHooked(p, func(point string) {
		if point == "mbox-torn" {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	a.Add("a@b", oncePrefix, strings.NewReader(onceMsg), when)
	t.Fatal("not killed")
}

// Only the lock of a dead omail writer of this host, this boot and this
// mailbox, that points at a message's start, is a reason to cut. A live
// holder's, another host's, another program's hold the mailbox until
// they are stale; a stale one, one of an earlier boot, of another
// mailbox, without a length (an older omail's) or pointing elsewhere is
// removed without cutting anything.
func TestTakeoverCutsOnlyDeadOmailWriters(t *testing.T) {
	shortLockTimeout(t)
	date := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	content := foreign + wholeCopy(t, date)[:60]
	dead := deadPid(t)
	n := int64(len(foreign))
	for name, lock := range map[string]func(p string) string{
		"live holder": func(p string) string { return lockOf(t, p, os.Getpid(), ownStart(), n) },
		"another host": func(p string) string {
			return strings.Replace(lockOf(t, p, dead, "-", n), hostname(), "elsewhere.example", 1)
		},
		"mutt-style":  func(string) string { return "" },
		"zero":        func(string) string { return "0" },
		"a pid alone": func(string) string { return strconv.Itoa(dead) + "\n" },
	} {
		t.Run("held/"+name, func(t *testing.T) {
			lines := logged(t)
			p := filepath.Join(t.TempDir(), "mbox")
			os.WriteFile(p, []byte(content), 0o600)
			os.WriteFile(p+".lock", []byte(lock(p)), 0o600)
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
			if len(*lines) != 0 {
				t.Errorf("logged %q", *lines)
			}
		})
	}
	for name, lock := range map[string]func(p string) string{
		"earlier boot": func(p string) string {
			return strings.Replace(lockOf(t, p, dead, "-", n), bootID(), "00000000-0000-0000-0000-000000000000", 1)
		},
		"no length":       func(string) string { return strconv.Itoa(dead) + " " + hostname() + "\n" },
		"another mailbox": func(string) string { return lockWith(dead, "-", n, 1) },
		"not a start":     func(p string) string { return lockOf(t, p, dead, "-", n+3) },
	} {
		t.Run("removed/"+name, func(t *testing.T) {
			lines := logged(t)
			p := filepath.Join(t.TempDir(), "mbox")
			os.WriteFile(p, []byte(content), 0o600)
			os.WriteFile(p+".lock", []byte(lock(p)), 0o600)
			openUnchanged(t, p, content)
			if want := name == "not a start"; want != (len(*lines) == 1) {
				t.Errorf("logged %q", *lines)
			}
		})
	}
}

// A pid that another process got since: the lock records its writer's
// start time, which the new process does not have.
func TestTakeoverSeesReusedPid(t *testing.T) {
	p := filepath.Join(t.TempDir(), "mbox")
	content := foreign + "From a@b Thu"
	os.WriteFile(p, []byte(content), 0o600)
	os.WriteFile(p+".lock", []byte(lockOf(t, p, os.Getppid(), "1", int64(len(foreign)))), 0o600)
	openUnchanged(t, p, foreign)
}

// openUnchanged opens the mbox at p and finds it holding content.
func openUnchanged(t *testing.T, p, content string) {
	t.Helper()
	a, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	a.Abort()
	if got := mustRead(t, p); string(got) != content {
		t.Fatalf("mailbox:\n%q\nwant\n%q", got, content)
	}
}

// After Recover cuts a torn copy whose lock was lost, our lock records
// the shorter length: were we killed while appending, the next writer
// would cut to where our copy starts, not to the length at Open (which
// would leave our copy's first bytes).
func TestRecoverCutRecordedInLock(t *testing.T) {
	date := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	whole := wholeCopy(t, date)
	p := filepath.Join(t.TempDir(), "mbox")
	os.WriteFile(p, []byte(foreign+whole[:50]), 0o600)
	a, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	if b := mustRead(t, p+".lock"); string(b) != lockOf(t, p, os.Getpid(), ownStart(), int64(len(foreign)+50)) {
		t.Fatalf("lock at Open: %q", b)
	}
	msg := strings.NewReader(onceMsg)
	if found, err := a.Recover(onceMarker, "a@b", oncePrefix, msg, msg.Size()); found || err != nil {
		t.Fatalf("Recover: %v %v", found, err)
	}
	if b := mustRead(t, p+".lock"); string(b) != lockOf(t, p, os.Getpid(), ownStart(), int64(len(foreign))) {
		t.Fatalf("lock after Recover's cut: %q", b)
	}
	a.Abort()
}

// When Abort cannot cut its copy back, its dotlock stays, naming the
// length: once the process is gone, the next writer cuts.
func TestAbortThatCannotCutKeepsLock(t *testing.T) {
	shortLockTimeout(t)
	p := filepath.Join(t.TempDir(), "mbox")
	os.WriteFile(p, []byte(foreign), 0o600)
	a, err := OpenHooked(p, func(point string) {
		if point == "?fault mbox-abort-truncate" {
			panic(&crashpoint.Fault{Point: "mbox-abort-truncate", Errno: syscall.EIO})
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	a.Add("a@b", oncePrefix, strings.NewReader(onceMsg), when)
	if err := a.Abort(); err == nil {
		t.Fatal("Abort: no error")
	}
	if _, err := Open(p); !errors.Is(err, ErrLocked) {
		t.Fatalf("Open while the aborting process lives: %v, want ErrLocked", err)
	}
	// The process is gone: its pid, in the lock, is a dead one.
	b := mustRead(t, p+".lock")
	os.WriteFile(p+".lock", []byte(strconv.Itoa(deadPid(t))+string(b[len(strconv.Itoa(os.Getpid())):])), 0o600)
	openUnchanged(t, p, foreign)
}

// A lock in a spool anyone may write to is trusted with a cut only when
// root or the mailbox's owner made it.
func TestForgedLockNotTrusted(t *testing.T) {
	for _, c := range []struct {
		lock, box uint32
		want      bool
	}{{0, 1000, true}, {1000, 1000, true}, {1001, 1000, false}, {1001, 0, false}} {
		if got := trustedOwner(fakeInfo{c.lock}, fakeInfo{c.box}); got != c.want {
			t.Errorf("lock of uid %d, mailbox of uid %d: trusted %v", c.lock, c.box, got)
		}
	}
}

type fakeInfo struct{ uid uint32 }

func (f fakeInfo) Name() string       { return "x" }
func (f fakeInfo) Size() int64        { return 0 }
func (f fakeInfo) Mode() os.FileMode  { return 0o600 }
func (f fakeInfo) ModTime() time.Time { return time.Time{} }
func (f fakeInfo) IsDir() bool        { return false }
func (f fakeInfo) Sys() any           { return &syscall.Stat_t{Uid: f.uid} }

// FuzzParseHolder: whatever a dotlock holds, reading it never fails
// hard, a pid taken from it is a pid, and what we write reads back.
func FuzzParseHolder(f *testing.F) {
	own, _ := lockContent(1234, 5678)
	for _, s := range []string{"", "0", "12\n", own, "12 " + hostname() + "\n", "99999999999 " + hostname() + " 1 b s 2\n",
		"1 " + hostname() + " -5 b s 2\n", "1 " + hostname() + " 00000000000000000010 b s x\n"} {
		f.Add([]byte(s), int64(0), uint64(0))
	}
	f.Fuzz(func(t *testing.T, data []byte, length int64, ino uint64) {
		h := parseHolder(data)
		if h.omail && (h.pid <= 0 || h.pid > maxPid) {
			t.Fatalf("pid %d taken from %q", h.pid, data)
		}
		if !h.omail && h.length != -1 {
			t.Fatalf("a length from a lock that is not ours: %q", data)
		}
		if hostname() == "" {
			return
		}
		if length < 0 {
			// OpenLock's record: ours, alive or dead, and no length.
			c, off := lockContent(-1, ino)
			back := parseHolder([]byte(c))
			if back.pid != os.Getpid() || !back.omail || back.length != -1 || back.boot != bootID() || len(c[off:strings.IndexByte(c[off:], ' ')+int(off)]) != 20 {
				t.Fatalf("%q read back as %+v", c, back)
			}
			return
		}
		c, off := lockContent(length, ino)
		back := parseHolder([]byte(c))
		if back.pid != os.Getpid() || back.length != length || back.mboxIno != ino || back.boot != bootID() || back.start != ownStart() {
			t.Fatalf("%q read back as %+v", c, back)
		}
		if c[off:off+20] != fmt.Sprintf("%020d", length) {
			t.Fatalf("length field of %q not at %d", c, off)
		}
	})
}

// A directory that lets us make no dotlock (EACCES at the link): the
// fcntl lock alone, but only where no dotlock is. A dead writer's lock
// we may not remove (EACCES, a root-owned lock in a /var/mail only root
// and the mail group may change) is busy: appending after its copy
// would have a writer who may remove it cut our mail back with it.
func TestFcntlAloneWhereNoDotlock(t *testing.T) {
	shortLockTimeout(t)
	deny := func(point string) crashpoint.Hook {
		return func(name string) {
			if name == "?fault "+point {
				panic(&crashpoint.Fault{Point: point, Errno: syscall.EACCES})
			}
		}
	}
	logged(t)
	p := filepath.Join(t.TempDir(), "mbox")
	os.WriteFile(p, []byte(foreign), 0o600)
	a, err := OpenHooked(p, deny("dotlock-link"))
	if err != nil {
		t.Fatal(err)
	}
	if !fcntlLocked(t, p) || fileExists(p+".lock") {
		t.Fatal("want the fcntl lock alone")
	}
	if err := a.Add("c@d", nil, strings.NewReader("Subject: x\n\nx\n"), when); err != nil {
		t.Fatal(err)
	}
	if err := a.Commit(); err != nil {
		t.Fatal(err)
	}
	content := string(mustRead(t, p)) + "From a@b Thu"
	os.WriteFile(p, []byte(content), 0o600)
	dead := lockOf(t, p, deadPid(t), "-", int64(len(content)-12))
	for _, point := range []string{"dotlock-link", "dotlock-takeover-remove"} {
		os.WriteFile(p+".lock", []byte(dead), 0o600)
		if a, err := OpenHooked(p, deny(point)); !errors.Is(err, ErrLocked) {
			if err == nil {
				a.Abort()
			}
			t.Fatalf("%s denied, a dead writer's lock there: %v, want ErrLocked", point, err)
		}
		if got := string(mustRead(t, p)); got != content && point == "dotlock-link" {
			t.Fatalf("%s denied: the mailbox changed", point)
		}
	}
	// Someone who may removes it: the torn copy goes with it.
	openUnchanged(t, p, content[:len(content)-12])
}

func fileExists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// A mail reader that writes a new mailbox and renames it over the path
// while we wait for the locks: we must not append to the old file,
// which nobody reads any more.
func TestOpenFollowsReplacedMailbox(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "mbox")
	os.WriteFile(p, []byte(foreign), 0o600)
	replaced := false
	a, err := OpenHooked(p, func(point string) {
		if point == "dotlock-link" && !replaced {
			replaced = true
			os.WriteFile(p+".new", []byte(foreign), 0o600)
			os.Rename(p+".new", p)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Add("c@d", nil, strings.NewReader("Subject: new\n\nNEWMAIL\n"), when); err != nil {
		t.Fatal(err)
	}
	if err := a.Commit(); err != nil {
		t.Fatal(err)
	}
	if !replaced || !strings.Contains(string(mustRead(t, p)), "NEWMAIL") {
		t.Fatalf("the message is not in the mailbox at the path (replaced %v)", replaced)
	}
}

// ClearAbandoned (run by root for a delivery child that may not remove
// locks) takes over what Open would, and leaves what is in use alone.
func TestClearAbandoned(t *testing.T) {
	logged(t)
	torn := foreign + "From a@b Thu"
	for name, c := range map[string]struct {
		lock       func(p string) string
		old        bool // the lock older than DotlockStale
		inUse      bool // another Appender holds the mailbox
		removed    bool
		afterwards string
	}{
		"dead omail writer":  {lock: func(p string) string { return lockOf(t, p, deadPid(t), "-", int64(len(foreign))) }, removed: true, afterwards: foreign},
		"live holder":        {lock: func(p string) string { return lockOf(t, p, os.Getpid(), ownStart(), int64(len(foreign))) }, afterwards: torn},
		"stale, a program's": {lock: func(string) string { return "" }, old: true, removed: true, afterwards: torn},
		"fresh, a program's": {lock: func(string) string { return "" }, afterwards: torn},
		"in use":             {lock: func(p string) string { return lockOf(t, p, deadPid(t), "-", int64(len(foreign))) }, inUse: true, afterwards: torn},
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "mbox")
			os.WriteFile(p, []byte(torn), 0o600)
			if c.inUse {
				a, err := OpenHooked(p, func(point string) {
					if point == "?fault dotlock-link" {
						panic(&crashpoint.Fault{Point: "dotlock-link", Errno: syscall.EACCES})
					}
				})
				if err != nil {
					t.Fatal(err)
				}
				defer a.Abort()
			}
			os.WriteFile(p+".lock", []byte(c.lock(p)), 0o600)
			if c.old {
				old := time.Now().Add(-DotlockStale - time.Minute)
				os.Chtimes(p+".lock", old, old)
			}
			removed, err := ClearAbandoned(p, nil)
			if err != nil || removed != c.removed || fileExists(p+".lock") == c.removed {
				t.Fatalf("ClearAbandoned: %v %v, lock there %v", removed, err, fileExists(p+".lock"))
			}
			if got := string(mustRead(t, p)); got != c.afterwards {
				t.Fatalf("mailbox %q, want %q", got, c.afterwards)
			}
		})
	}
	if removed, err := ClearAbandoned(filepath.Join(t.TempDir(), "none"), nil); removed || err != nil {
		t.Fatalf("no mailbox: %v %v", removed, err)
	}
}

// MakeOwned makes a missing mailbox its user's, mode 600, and gives a
// root-owned one to its user; it never follows a link.
func TestMakeOwned(t *testing.T) {
	dir := t.TempDir()
	uid, gid := os.Getuid(), os.Getgid()
	p := filepath.Join(dir, "u")
	if did, err := MakeOwned(p, uid, gid); did != Created || err != nil {
		t.Fatalf("missing: %q %v", did, err)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode())
	}
	if did, err := MakeOwned(p, uid, gid); did != "" || err != nil {
		t.Fatalf("there already: %q %v", did, err)
	}
	os.Symlink(filepath.Join(dir, "elsewhere"), filepath.Join(dir, "link"))
	if did, _ := MakeOwned(filepath.Join(dir, "link"), uid, gid); did != "" || fileExists(filepath.Join(dir, "elsewhere")) {
		t.Fatalf("a link followed: %q", did)
	}
	if os.Geteuid() != 0 {
		return // giving a root-owned mailbox away needs root
	}
	r := filepath.Join(dir, "r")
	os.WriteFile(r, nil, 0o600)
	if did, err := MakeOwned(r, 4321, 4321); did != GivenToUser || err != nil {
		t.Fatalf("root's: %q %v", did, err)
	}
	if st, _ := os.Stat(r); st.Sys().(*syscall.Stat_t).Uid != 4321 {
		t.Fatal("not given")
	}
	os.Chown(r, 4322, 4322)
	if did, _ := MakeOwned(r, 4321, 4321); did != "" {
		t.Fatalf("someone else's: %q", did)
	}
	// Root's, readable by all: given away mode 600 only. Root's with a
	// second name (a hard link): not given at all.
	w := filepath.Join(dir, "w")
	os.WriteFile(w, nil, 0o644)
	os.Chmod(w, 0o664)
	if did, err := MakeOwned(w, 4321, 4321); did != GivenToUser || err != nil {
		t.Fatalf("root's 664: %q %v", did, err)
	}
	if st, _ := os.Stat(w); st.Mode().Perm() != 0o600 {
		t.Fatalf("given away with mode %v", st.Mode())
	}
	h := filepath.Join(dir, "h")
	os.WriteFile(h, nil, 0o600)
	os.Link(h, filepath.Join(dir, "h2"))
	if did, _ := MakeOwned(h, 4321, 4321); did != "" {
		t.Fatalf("a hard-linked file given away: %q", did)
	}
}

// A lock taken with OpenLock records no length: when its holder dies
// after a writer that ignores the locks appended (or after the holder
// moved such mail to the front of the file itself), the next writer
// removes the lock and cuts nothing. The same death under an Open lock
// cuts back to the length at Open: the difference is the point.
func TestOpenLockRecordsNoLength(t *testing.T) {
	const rogue = "From rogue@example.org Mon Jan  1 00:00:00 2024\nSubject: rogue\n\nno lock\n\n"
	for _, lockOnly := range []bool{true, false} {
		t.Run(fmt.Sprint("lockOnly=", lockOnly), func(t *testing.T) {
			lines := logged(t)
			p := filepath.Join(t.TempDir(), "mbox")
			os.WriteFile(p, []byte(foreign), 0o600)
			a, err := openAs(p, nil, lockOnly)
			if err != nil {
				t.Fatal(err)
			}
			if lockOnly {
				if err := a.Add("a@b", nil, strings.NewReader("x\n"), when); err == nil {
					t.Error("Add on an OpenLock mailbox: no error")
				}
			}
			f, _ := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
			f.WriteString(rogue)
			f.Close()
			// Death: the descriptors go (the fcntl lock with them), the
			// dotlock stays, naming a process that is gone.
			a.lockf.Close()
			a.f.Close()
			b := mustRead(t, p+".lock")
			os.WriteFile(p+".lock", []byte(strconv.Itoa(deadPid(t))+string(b[len(strconv.Itoa(os.Getpid())):])), 0o600)
			want := foreign + rogue
			if !lockOnly {
				want = foreign
			}
			openUnchanged(t, p, want)
			if fileExists(p + ".lock") {
				t.Error("the dead holder's lock is still there")
			}
			if cut := len(*lines) == 1 && strings.Contains((*lines)[0], "cut"); cut == lockOnly {
				t.Errorf("logged %q", *lines)
			}
		})
	}
}
