package testfake

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// Queue is a fake queue program. Each run reads the message on fd 0
// and the envelope on fd 1, as omail-queue and qmail-queue do, keeps
// both under Dir, and exits 0 unless the test asked for another code
// (Fail, Refuse). Runs may overlap: each takes its own numbered
// directory, claimed with mkdir, so none overwrites another.
//
// The program is a /bin/sh script using only cat, grep and mkdir from
// /usr/bin:/bin: it needs nothing from the caller's environment, so it
// works under the bare environments commands hand their children.
type Queue struct {
	Prog string // the program: OMAILQUEUE, QMAILQUEUE, or qqclient.Start's path
	Dir  string // its state: run.N/ per run, and the test's exit codes

	t     testing.TB
	rules int
}

// QueueRun is what one run of the fake queue program received.
type QueueRun struct {
	Message  []byte // fd 0, as read
	Envelope []byte // fd 1, as read: F...\0 T...\0 ... \0 when well formed
	Exit     int    // the code it exited with; -1 if it did not get that far (killed)
}

// NewQueue writes a fake queue program in a fresh temporary directory
// of t, removed when the test ends.
func NewQueue(t testing.TB) *Queue {
	t.Helper()
	return newQueueIn(t, t.TempDir())
}

func newQueueIn(t testing.TB, dir string) *Queue {
	t.Helper()
	q := &Queue{Prog: filepath.Join(dir, "queue"), Dir: dir, t: t}
	if err := os.WriteFile(q.Prog, []byte(queueScript(dir)), 0o755); err != nil {
		t.Fatal(err)
	}
	return q
}

// queueScript is the program for a fake queue keeping its state in dir.
// Exit codes are qmail-queue's: 54 when the message or the envelope
// cannot be read, 53 when the run cannot be kept.
func queueScript(dir string) string {
	return `#!/bin/sh
# A fake queue program from omail/lib/internal/testfake: keeps each
# run's message and envelope in $d/run.N/ and exits as the test said.
PATH=/usr/bin:/bin
d=` + shellQuote(dir) + `
n=0
until mkdir "$d/run.$n" 2>/dev/null; do
	[ -e "$d/run.$n" ] || exit 53
	n=$((n + 1))
done
r=$d/run.$n
cat >"$r/message" || { echo 54 >"$r/exit"; exit 54; }
cat <&1 >"$r/envelope" || { echo 54 >"$r/exit"; exit 54; }
code=0
[ -f "$d/exit" ] && code=$(cat "$d/exit")
for rule in "$d"/refuse.*.text; do
	[ -f "$rule" ] || continue
	if grep -qF -f "$rule" "$r/message"; then
		code=$(cat "${rule%.text}.exit")
		break
	fi
done
echo "$code" >"$r/exit"
exit "$code"
`
}

// shellQuote quotes s as one sh word.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Fail makes every later run exit with code, after reading and keeping
// the message and envelope; Fail(0) makes the runs succeed again. A
// Refuse rule that matches wins over it.
func (q *Queue) Fail(code int) {
	q.t.Helper()
	checkCode(q.t, code)
	q.write("exit", strconv.Itoa(code)+"\n")
}

// Refuse makes a later run whose message holds text (one line, not
// empty) exit with code, after keeping it, whatever Fail said. Rules
// are tried in the order they were made; the first that matches wins.
func (q *Queue) Refuse(text string, code int) {
	q.t.Helper()
	checkCode(q.t, code)
	if text == "" || strings.ContainsAny(text, "\n\x00") {
		q.t.Fatalf("testfake: Refuse text must be one non-empty line, not %q", text)
	}
	name := fmt.Sprintf("refuse.%04d", q.rules)
	q.rules++
	// The code first: a run sees a rule once its .text file exists.
	q.write(name+".exit", strconv.Itoa(code)+"\n")
	q.write(name+".text", text+"\n")
}

func checkCode(t testing.TB, code int) {
	t.Helper()
	if code < 0 || code > 255 {
		t.Fatalf("testfake: exit code %d out of range", code)
	}
}

// write puts a control file in place by rename, so that a run never
// reads half of one.
func (q *Queue) write(name, content string) {
	q.t.Helper()
	tmp := filepath.Join(q.Dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		q.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(q.Dir, name)); err != nil {
		q.t.Fatal(err)
	}
}

// Runs returns every run so far, in the order they started, whatever
// their exit codes.
func (q *Queue) Runs() []QueueRun {
	q.t.Helper()
	ents, err := os.ReadDir(q.Dir)
	if err != nil {
		q.t.Fatal(err)
	}
	var nums []int
	for _, e := range ents {
		s, ok := strings.CutPrefix(e.Name(), "run.")
		if !ok || !e.IsDir() {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			q.t.Fatalf("testfake: stray %s in %s", e.Name(), q.Dir)
		}
		nums = append(nums, n)
	}
	sort.Ints(nums)
	runs := make([]QueueRun, 0, len(nums))
	for _, n := range nums {
		runs = append(runs, q.run(n))
	}
	return runs
}

// run reads what run n left. A file it never wrote reads as empty.
func (q *Queue) run(n int) QueueRun {
	q.t.Helper()
	dir := filepath.Join(q.Dir, "run."+strconv.Itoa(n))
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil && !os.IsNotExist(err) {
			q.t.Fatal(err)
		}
		return b
	}
	r := QueueRun{Message: read("message"), Envelope: read("envelope"), Exit: -1}
	if s := strings.TrimSpace(string(read("exit"))); s != "" {
		code, err := strconv.Atoi(s)
		if err != nil {
			q.t.Fatalf("testfake: run %d: exit %q", n, s)
		}
		r.Exit = code
	}
	return r
}

// Accepted returns the runs that exited 0: the messages a real queue
// would hold, in order.
func (q *Queue) Accepted() []QueueRun {
	q.t.Helper()
	var ok []QueueRun
	for _, r := range q.Runs() {
		if r.Exit == 0 {
			ok = append(ok, r)
		}
	}
	return ok
}
