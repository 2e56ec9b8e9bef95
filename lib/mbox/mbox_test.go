package mbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var when = time.Date(2026, 11, 5, 9, 4, 5, 0, time.UTC)

// message is one message read back from an mbox.
type message struct {
	From string // the "From " line without "From "
	Body string // everything after it, unquoted, without the separating blank line
}

var quotedFrom = regexp.MustCompile(`^>+From `)

// readMbox parses an mboxrd file strictly: it must start with "From ",
// every later "From " line must follow a blank line, and the blank line
// before it belongs to no message.
func readMbox(t testing.TB, data []byte) []message {
	t.Helper()
	if len(data) == 0 {
		return nil
	}
	if !bytes.HasPrefix(data, []byte("From ")) {
		t.Fatalf("mbox does not start with From: %q", data)
	}
	if !bytes.HasSuffix(data, []byte("\n\n")) {
		t.Fatalf("mbox does not end with a blank line: %q", data)
	}
	lines := strings.SplitAfter(string(data), "\n")
	lines = lines[:len(lines)-1] // the empty string after the last \n
	var out []message
	var cur *message
	for i, l := range lines {
		if strings.HasPrefix(l, "From ") {
			if cur != nil {
				if !strings.HasSuffix(cur.Body, "\n\n") && cur.Body != "\n" {
					t.Fatalf("From line %d not after a blank line", i)
				}
				cur.Body = strings.TrimSuffix(cur.Body, "\n")
				out = append(out, *cur)
			}
			cur = &message{From: strings.TrimSuffix(l[5:], "\n")}
			continue
		}
		if quotedFrom.MatchString(l) {
			l = l[1:]
		}
		cur.Body += l
	}
	cur.Body = strings.TrimSuffix(cur.Body, "\n")
	return append(out, *cur)
}

func add(t testing.TB, path, sender string, prefix []string, body string) {
	t.Helper()
	a, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Add(sender, prefix, strings.NewReader(body), when); err != nil {
		a.Abort()
		t.Fatal(err)
	}
	if err := a.Commit(); err != nil {
		t.Fatal(err)
	}
}

func TestAddExactBytes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "box")
	add(t, path, "bob@example.org", []string{"Return-Path: <bob@example.org>", "Delivered-To: ann@test.example\n"},
		"Subject: hi\n\nFrom here\n>From there\n>>From everywhere\nFromage\n no From \nlast line")
	add(t, path, "", nil, "Subject: bounce\n\nbody\n")
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := "From bob@example.org Thu Nov  5 09:04:05 2026\n" +
		"Return-Path: <bob@example.org>\nDelivered-To: ann@test.example\n" +
		"Subject: hi\n\n>From here\n>>From there\n>>>From everywhere\nFromage\n no From \nlast line\n\n" +
		"From MAILER-DAEMON Thu Nov  5 09:04:05 2026\nSubject: bounce\n\nbody\n\n"
	if string(got) != want {
		t.Fatalf("mbox:\n%q\nwant\n%q", got, want)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode())
	}
	if _, err := os.Stat(path + ".lock"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dotlock left behind: %v", err)
	}
}

func TestSeveralAddsOneCommit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "box")
	a, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := a.Add("s@x", nil, strings.NewReader(fmt.Sprintf("N: %d\n\nFrom %d\n", i, i)), when); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Commit(); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	msgs := readMbox(t, data)
	if len(msgs) != 3 {
		t.Fatalf("%d messages, want 3", len(msgs))
	}
	for i, m := range msgs {
		if want := fmt.Sprintf("N: %d\n\nFrom %d\n", i, i); m.Body != want {
			t.Errorf("message %d: %q, want %q", i, m.Body, want)
		}
	}
}

func TestSeparatesFromForeignTail(t *testing.T) {
	for _, old := range []string{"x", "x\n", "x\n\n", "\n"} {
		path := filepath.Join(t.TempDir(), "box")
		os.WriteFile(path, []byte(old), 0o600)
		add(t, path, "a@b", nil, "m\n")
		data, _ := os.ReadFile(path)
		if !bytes.HasSuffix(data, []byte("\n\nFrom a@b Thu Nov  5 09:04:05 2026\nm\n\n")) && string(data) != "\nFrom a@b Thu Nov  5 09:04:05 2026\nm\n\n" {
			t.Errorf("after %q: %q", old, data)
		}
		if !bytes.HasPrefix(data, []byte(old)) {
			t.Errorf("old contents changed: %q", data)
		}
	}
}

func TestFromSenderSanitized(t *testing.T) {
	if got := FromSender("a b\n@c"); got != "a_b_@c" {
		t.Errorf("FromSender = %q", got)
	}
}

func TestPrefixWithLineBreakRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "box")
	os.WriteFile(path, []byte("From x Thu Nov  5 09:04:05 2026\nold\n\n"), 0o600)
	before, _ := os.ReadFile(path)
	a, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Add("s", []string{"Delivered-To: a\nEvil: yes"}, strings.NewReader("m\n"), when); err == nil {
		t.Fatal("prefix with a newline accepted")
	}
	if err := a.Commit(); err == nil {
		t.Fatal("Commit after failed Add succeeded")
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Fatalf("mailbox changed: %q", after)
	}
}

type failingReader struct {
	r io.Reader
	n int
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("disk on fire")
	}
	if len(p) > f.n {
		p = p[:f.n]
	}
	n, err := f.r.Read(p)
	f.n -= n
	return n, err
}

func TestReadErrorCutsBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "box")
	add(t, path, "a@b", nil, "first\n")
	before, _ := os.ReadFile(path)
	a, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Add("a@b", nil, strings.NewReader("second\n"), when); err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("line of text\n", 100000)
	if err := a.Add("a@b", nil, &failingReader{strings.NewReader(big), 200000}, when); err == nil {
		t.Fatal("Add did not report the read error")
	}
	if err := a.Abort(); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Fatalf("mailbox not restored: %d bytes, want %d", len(after), len(before))
	}
	// The mailbox is usable afterwards: the locks are gone.
	add(t, path, "a@b", nil, "third\n")
}

func TestLockedByOtherAppender(t *testing.T) {
	defer func(d time.Duration) { LockTimeout = d }(LockTimeout)
	LockTimeout = 30 * time.Millisecond
	path := filepath.Join(t.TempDir(), "box")
	a, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	// Without the dotlock the OFD lock alone must still keep a second
	// appender in this same process out.
	os.Remove(path + ".lock")
	if _, err := Open(path); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	a.Commit()
	b, err := Open(path)
	if err != nil {
		t.Fatalf("Open after release: %v", err)
	}
	b.Abort()
}

func TestDotlock(t *testing.T) {
	defer func(d time.Duration) { LockTimeout = d }(LockTimeout)
	LockTimeout = 30 * time.Millisecond
	path := filepath.Join(t.TempDir(), "box")
	os.WriteFile(path+".lock", []byte("1\n"), 0o600)
	if _, err := Open(path); !errors.Is(err, ErrLocked) {
		t.Fatalf("Open with a fresh dotlock: %v, want ErrLocked", err)
	}
	old := time.Now().Add(-DotlockStale - time.Minute)
	os.Chtimes(path+".lock", old, old)
	add(t, path, "a@b", nil, "m\n")
	if _, err := os.Stat(path + ".lock"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale dotlock not removed: %v", err)
	}
}

// A classic POSIX fcntl lock, as mutt and Dovecot take, keeps us out.
func TestInteropPOSIXLock(t *testing.T) {
	defer func(d time.Duration) { LockTimeout = d }(LockTimeout)
	LockTimeout = 30 * time.Millisecond
	path := filepath.Join(t.TempDir(), "box")
	os.WriteFile(path, nil, 0o600)
	cmd := exec.Command("python3", "-c", `
import fcntl, sys
f = open(sys.argv[1], "r+")
fcntl.lockf(f, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.read()
`, path)
	stdin, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line := make([]byte, 7)
	if _, err := io.ReadFull(out, line); err != nil || string(line) != "locked\n" {
		t.Fatalf("python lock holder: %q %v", line, err)
	}
	_, err := Open(path)
	stdin.Close()
	cmd.Wait()
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("Open while python holds lockf: %v, want ErrLocked", err)
	}
	add(t, path, "a@b", nil, "m\n")
}

// Many appenders at once, goroutines and processes, never interleave.
func TestConcurrentAppendersDoNotInterleave(t *testing.T) {
	path := filepath.Join(t.TempDir(), "box")
	const workers, each, procs = 8, 10, 3
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				a, err := Open(path)
				if err != nil {
					t.Error(err)
					return
				}
				if err := a.Add("g@x", nil, strings.NewReader(body("g", w, i)), when); err != nil {
					t.Error(err)
				}
				if err := a.Commit(); err != nil {
					t.Error(err)
				}
			}
		}(w)
	}
	var cmds []*exec.Cmd
	for p := 0; p < procs; p++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperAppend$")
		cmd.Env = append(os.Environ(), "MBOX_HELPER="+path, "MBOX_HELPER_ID="+strconv.Itoa(p))
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	wg.Wait()
	for _, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Fatalf("helper: %v", err)
		}
	}
	data, _ := os.ReadFile(path)
	msgs := readMbox(t, data)
	seen := map[string]bool{}
	for _, m := range msgs {
		seen[m.Body] = true
	}
	if len(msgs) != workers*each+procs*each || len(seen) != len(msgs) {
		t.Fatalf("%d messages (%d distinct), want %d", len(msgs), len(seen), workers*each+procs*each)
	}
	for w := 0; w < workers; w++ {
		for i := 0; i < each; i++ {
			if !seen[body("g", w, i)] {
				t.Errorf("goroutine %d message %d missing or mangled", w, i)
			}
		}
	}
	for p := 0; p < procs; p++ {
		for i := 0; i < each; i++ {
			if !seen[body("p", p, i)] {
				t.Errorf("process %d message %d missing or mangled", p, i)
			}
		}
	}
}

func body(kind string, w, i int) string {
	return fmt.Sprintf("Subject: %s%d-%d\n\n%s\nFrom the middle\nend %s%d-%d\n", kind, w, i,
		strings.Repeat(fmt.Sprintf("%s%d-%d ", kind, w, i), 3000), kind, w, i)
}

// TestHelperAppend is not a test: the concurrency test runs it in other
// processes.
func TestHelperAppend(t *testing.T) {
	path := os.Getenv("MBOX_HELPER")
	if path == "" {
		return
	}
	id, _ := strconv.Atoi(os.Getenv("MBOX_HELPER_ID"))
	for i := 0; i < 10; i++ {
		add(t, path, "p@x", nil, body("p", id, i))
	}
}

// Python's mailbox module reads back exactly what we wrote.
func TestPythonMailboxReadsBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "box")
	bodies := []string{
		"Subject: one\n\nFrom the start\n>From quoted\nplain\n",
		"Subject: two\n\nno newline at end",
		"Subject: three\nX: y\n\n\n\nblank lines\n\n",
	}
	senders := []string{"a@example.org", "", "c d@example.org"}
	for i, b := range bodies {
		add(t, path, senders[i], []string{"Return-Path: <" + senders[i] + ">", "Delivered-To: u@test.example"}, b)
	}
	out, err := exec.Command("python3", "-c", `
import mailbox, sys, json
box = mailbox.mbox(sys.argv[1], create=False)
print(json.dumps([[m.get_from(), box.get_bytes(k).decode("latin-1")] for k, m in zip(box.keys(), box)]))
`, path).Output()
	if err != nil {
		t.Fatalf("python3: %v", err)
	}
	var got [][2]string
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(got) != len(bodies) {
		t.Fatalf("python found %d messages, want %d", len(got), len(bodies))
	}
	for i, b := range bodies {
		wantFrom := FromSender(senders[i]) + " Thu Nov  5 09:04:05 2026"
		if got[i][0] != wantFrom {
			t.Errorf("message %d From: %q, want %q", i, got[i][0], wantFrom)
		}
		if !strings.HasSuffix(b, "\n") {
			b += "\n"
		}
		quoted := regexp.MustCompile(`(?m)^(>*From )`).ReplaceAllString(b, ">$1")
		want := "Return-Path: <" + senders[i] + ">\nDelivered-To: u@test.example\n" + quoted
		if got[i][1] != want {
			t.Errorf("message %d bytes:\n%q\nwant\n%q", i, got[i][1], want)
		}
	}
}

// FuzzQuoting: whatever the message, reading the mbox back and undoing
// the mboxrd quoting gives the message (with a final newline added).
func FuzzQuoting(f *testing.F) {
	for _, s := range []string{"", "From x", "\nFrom \n>From >\n", ">>>>From", "a\n\nFrom", "From\n", ">\n>F\n>Fr\n", "x\r\nFrom y\r\n"} {
		f.Add(s)
	}
	dir := f.TempDir()
	n := 0
	f.Fuzz(func(t *testing.T, msg string) {
		n++
		path := filepath.Join(dir, strconv.Itoa(n))
		add(t, path, "s@x", nil, msg)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		os.Remove(path)
		want := msg
		if want != "" && !strings.HasSuffix(want, "\n") {
			want += "\n"
		}
		msgs := readMbox(t, data)
		if len(msgs) != 1 || msgs[0].Body != want {
			t.Fatalf("round trip of %q gave %q", msg, msgs)
		}
	})
}

// An Appender used only as the lock (as omail-pack does) never changes
// the file, even when the holder shortened it meanwhile.
func TestLockOnlyLeavesFileAlone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "box")
	add(t, path, "a@b", nil, strings.Repeat("x\n", 100))
	a, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 10); err != nil {
		t.Fatal(err)
	}
	if err := a.Abort(); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); st.Size() != 10 {
		t.Fatalf("size %d after Abort, want 10", st.Size())
	}
}
