package qmanager

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"omail/lib/outcome"
	"omail/lib/queue"
)

// Damaged queue files of every kind a message has (docs/RELIABILITY.md,
// "Damaged queue files"): each damaged message is set aside in corrupt/
// whole, byte for byte as it was found, with one log line, while the
// healthy messages queued before and after it are delivered by the same
// pass, and the pass reports no error (omail-deliver -flush exits 0).

// splitTodo is the message and the state of single-file entry b.
func splitTodo(t *testing.T, b []byte) (msg, st []byte) {
	t.Helper()
	var m, s int
	if _, err := fmt.Sscanf(string(b[len(b)-25:]), "%016x%08x\n", &m, &s); err != nil {
		t.Fatalf("footer of %q: %v", b, err)
	}
	return b[:m], b[m : m+s]
}

func TestDamagedQueueFilesAreSetAsideAndTheRestFlows(t *testing.T) {
	type damage func(t *testing.T, b []byte) []byte // the file's new content
	cut := func(n int) damage {                     // the last n bytes gone
		return func(t *testing.T, b []byte) []byte { return b[:len(b)-n] }
	}
	half := func(t *testing.T, b []byte) []byte { return b[:len(b)/2] }
	empty := func(t *testing.T, b []byte) []byte { return nil }
	garbage := func(t *testing.T, b []byte) []byte {
		g := bytes.Repeat([]byte("\x9f\x00garbage\xff"), len(b)/10+1)
		return append(g[:len(b)-1], '\n') // same size, and a footer's last byte
	}
	replace := func(old, new string) damage {
		return func(t *testing.T, b []byte) []byte {
			if !bytes.Contains(b, []byte(old)) {
				t.Fatalf("no %q in %q", old, b)
			}
			return bytes.Replace(b, []byte(old), []byte(new), 1)
		}
	}
	// inState applies d to the STATE of a single-file entry and writes a
	// footer that agrees: the damage is the state's alone.
	inState := func(d damage) damage {
		return func(t *testing.T, b []byte) []byte {
			msg, st := splitTodo(t, b)
			st = d(t, append([]byte{}, st...))
			out := append(append([]byte{}, msg...), st...)
			return fmt.Appendf(out, "OMQ2%016x%08x\n", len(msg), len(st))
		}
	}
	for _, tc := range []struct {
		name string
		// taken: the message is taken apart by a first, deferred attempt
		// (its state in info/, mess/ cut back) before the damage.
		taken bool
		file  string // the directory of the file damaged
		d     damage // nil: the file is removed
		want  []string
		// leftTodo: todo/ID is there too, as a crash between writing
		// info/ and removing todo/ leaves it.
		leftTodo bool
	}{
		// todo/ID, a committed single-file entry: message, state, footer.
		{"todo truncated in the message", false, queue.DirTodo, half, []string{queue.DirTodo}, false},
		{"todo truncated in the footer", false, queue.DirTodo, cut(7), []string{queue.DirTodo}, false},
		{"todo without its footer's end", false, queue.DirTodo, cut(1), []string{queue.DirTodo}, false},
		{"todo empty", false, queue.DirTodo, empty, []string{queue.DirTodo}, false},
		{"todo garbage", false, queue.DirTodo, garbage, []string{queue.DirTodo}, false},
		{"todo footer of another version", false, queue.DirTodo, replace("OMQ2", "OMQ3"), []string{queue.DirTodo}, false},
		{"todo footer lengths wrong", false, queue.DirTodo, replace("OMQ20", "OMQ21"), []string{queue.DirTodo}, false},
		// A footer that agrees with a damaged state: the deliverer has
		// linked the file to mess/ID (the same inode) before it reads the
		// state, so it is set aside under both names.
		{"todo state of another version", false, queue.DirTodo, inState(replace("V1\x00", "V2\x00")), []string{queue.DirTodo, queue.DirMess}, false},
		{"todo state without its end mark", false, queue.DirTodo, inState(cut(2)), []string{queue.DirTodo, queue.DirMess}, false},
		{"todo state truncated", false, queue.DirTodo, inState(half), []string{queue.DirTodo, queue.DirMess}, false},
		{"todo state garbage", false, queue.DirTodo, inState(garbage), []string{queue.DirTodo, queue.DirMess}, false},
		// info/ID, the state of a message taken apart, and mess/ID.
		{"info truncated", true, queue.DirInfo, half, []string{queue.DirInfo, queue.DirMess}, false},
		{"info empty", true, queue.DirInfo, empty, []string{queue.DirInfo, queue.DirMess}, false},
		{"info garbage", true, queue.DirInfo, garbage, []string{queue.DirInfo, queue.DirMess}, false},
		{"info of another version", true, queue.DirInfo, replace("V1\x00", "V2\x00"), []string{queue.DirInfo, queue.DirMess}, false},
		{"info without its end mark", true, queue.DirInfo, cut(2), []string{queue.DirInfo, queue.DirMess}, false},
		{"info with a bad recipient", true, queue.DirInfo, replace("\x00RT ", "\x00RX "), []string{queue.DirInfo, queue.DirMess}, false},
		{"info garbage, todo left by a crash", true, queue.DirInfo, garbage, []string{queue.DirInfo, queue.DirMess, queue.DirTodo}, true},
		{"mess missing", true, queue.DirMess, nil, []string{queue.DirInfo}, false},
		{"mess truncated", true, queue.DirMess, half, []string{queue.DirInfo, queue.DirMess}, false},
		{"mess empty", true, queue.DirMess, empty, []string{queue.DirInfo, queue.DirMess}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, map[string]string{})
			deferring := true
			f.m.T.Local = func(ctx context.Context, msgPath, sender, rcpt string) outcome.Result {
				b, err := os.ReadFile(msgPath)
				if err != nil || string(b) != "Subject: test\n\nbody\n" {
					t.Errorf("%s got %q, %v", rcpt, b, err)
				}
				if rcpt == "bad@test.example" && deferring {
					return outcome.Result{Status: outcome.Temp, Text: "not now"}
				}
				f.bump(rcpt)
				return outcome.Result{Status: outcome.OK, Text: "delivered"}
			}
			before := f.enqueue("a@b", "h1@test.example", "h2@test.example")
			bad := f.enqueue("a@b", "bad@test.example")
			committed, err := os.ReadFile(f.m.Q.Path(queue.DirTodo, bad))
			if err != nil {
				t.Fatal(err)
			}
			if tc.taken {
				f.flush()
				if tc.leftTodo {
					if err := os.WriteFile(f.m.Q.Path(queue.DirTodo, bad), committed, 0o640); err != nil {
						t.Fatal(err)
					}
				}
				deferring = false
				f.advance(24 * time.Hour)
				if f.count("h1@test.example") != 1 {
					t.Fatalf("calls %v", f.calls)
				}
			}
			after := f.enqueue("a@b", "h3@test.example")

			// Damage, and keep what each file to be set aside holds.
			p := f.m.Q.Path(tc.file, bad)
			if tc.d == nil {
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
			} else {
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, tc.d(t, b), 0o640); err != nil {
					t.Fatal(err)
				}
			}
			found := map[string][]byte{}
			for _, d := range tc.want {
				src := d
				if d == queue.DirMess && !tc.taken {
					src = queue.DirTodo // linked to mess/ by the attempt
				}
				b, err := os.ReadFile(f.m.Q.Path(src, bad))
				if err != nil {
					t.Fatal(err)
				}
				found[d] = b
			}

			f.flush()

			for _, r := range []string{"h1@test.example", "h2@test.example", "h3@test.example"} {
				if n := f.count(r); n != 1 {
					t.Errorf("%s delivered %d times", r, n)
				}
			}
			if f.count("bad@test.example") != 0 {
				t.Errorf("the damaged message was delivered")
			}
			if len(f.messages()) != 0 {
				t.Errorf("left in the queue: %v", f.messages())
			}
			for _, d := range []string{queue.DirTodo, queue.DirInfo, queue.DirMess} {
				if _, err := os.Lstat(f.m.Q.Path(d, bad)); err == nil {
					t.Errorf("%s/%s still there", d, bad)
				}
			}
			names, err := os.ReadDir(f.m.Q.Path(queue.DirCorrupt, ""))
			if err != nil || len(names) != len(tc.want) {
				t.Errorf("corrupt/ holds %v (%v), want %d files", names, err, len(tc.want))
			}
			for _, d := range tc.want {
				b, err := os.ReadFile(f.m.Q.Path(queue.DirCorrupt, bad+"."+d))
				if err != nil {
					t.Errorf("corrupt/%s.%s: %v", bad, d, err)
				} else if !bytes.Equal(b, found[d]) {
					t.Errorf("corrupt/%s.%s holds %q, was %q", bad, d, b, found[d])
				}
			}
			log := f.log.String()
			if strings.Count(log, "set aside in corrupt/") != 1 || !strings.Contains(log, "warning: msg "+bad+" set aside in corrupt/: ") {
				t.Errorf("want one line setting aside %s; log:\n%s", bad, log)
			}
			for _, id := range []string{before, after} {
				if !strings.Contains(log, "end msg "+id) {
					t.Errorf("msg %s not finished; log:\n%s", id, log)
				}
			}
		})
	}
}

// The notes beside a message (hold/ID, wake/ID) are empty files whose
// name is all they say: content in one is not damage and changes
// nothing, and a name that is not a message id is never taken for one.
func TestNotesWithContentOrStrangeNames(t *testing.T) {
	f := newFixture(t, map[string]string{})
	f.localAnswers(outcome.Result{Status: outcome.OK, Text: "delivered"})
	held := f.enqueue("a@b", "held@test.example")
	woken := f.enqueue("a@b", "woken@test.example")
	for _, n := range []struct{ dir, name string }{
		{queue.DirHold, held}, {queue.DirWake, woken},
		{queue.DirHold, "junk"}, {queue.DirWake, "1.2.3"}, {queue.DirWake, ".1.2.3.4x"},
	} {
		if err := os.WriteFile(f.m.Q.Path(n.dir, n.name), []byte("\x00garbage\n"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	f.flush()
	if f.count("held@test.example") != 0 || f.count("woken@test.example") != 1 {
		t.Errorf("calls %v", f.calls)
	}
	if _, ok := f.messages()[held]; !ok {
		t.Errorf("held message gone")
	}
	if ids, err := f.m.Q.HeldIDs(); err != nil || len(ids) != 1 || ids[0] != held {
		t.Errorf("held: %v, %v", ids, err)
	}
	if names, _ := os.ReadDir(f.m.Q.Path(queue.DirCorrupt, "")); len(names) != 0 {
		t.Errorf("corrupt/: %v", names)
	}
	if strings.Contains(f.log.String(), "warning") {
		t.Errorf("log:\n%s", f.log.String())
	}
}

// The daemon does the same: damaged files its start-up scan finds in
// info/ and todo/, and one that arrives as new mail, are set aside while
// the healthy messages around them are delivered.
func TestDaemonSetsDamagedFilesAsideAndDelivers(t *testing.T) {
	f := newFixture(t, map[string]string{})
	delivered := f.deliverLocally()
	past := f.now.Unix() - 1
	ids := f.backlog(past, past, past)
	if err := os.WriteFile(f.m.Q.Path(queue.DirInfo, ids[1]), []byte("V1\x00garbage"), 0o640); err != nil {
		t.Fatal(err)
	}
	oldTodo := f.enqueue("s@x.example", "t@test.example")
	if err := os.Truncate(f.m.Q.Path(queue.DirTodo, oldTodo), 10); err != nil {
		t.Fatal(err)
	}
	newMail := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.m.Run(ctx, Signals{New: newMail}) }()

	got := map[string]bool{<-delivered: true, <-delivered: true}
	newBad := f.enqueue("s@x.example", "n@test.example")
	p := f.m.Q.Path(queue.DirTodo, newBad)
	b, _ := os.ReadFile(p)
	if err := os.WriteFile(p, bytes.Replace(b, []byte("OMQ2"), []byte("OMQ3"), 1), 0o640); err != nil {
		t.Fatal(err)
	}
	f.enqueue("s@x.example", "new@test.example")
	newMail <- struct{}{}
	got[<-delivered] = true
	for _, id := range []string{ids[1], oldTodo, newBad} {
		f.waitLog(t, "warning: msg "+id+" set aside in corrupt/")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !got["b0@test.example"] || !got["b2@test.example"] || !got["new@test.example"] || len(got) != 3 {
		t.Errorf("delivered %v", got)
	}
	for _, want := range []string{ids[1] + ".info", ids[1] + ".mess", oldTodo + ".todo", newBad + ".todo"} {
		if _, err := os.Stat(f.m.Q.Path(queue.DirCorrupt, want)); err != nil {
			t.Errorf("corrupt/%s: %v", want, err)
		}
	}
	if len(f.messages()) != 0 {
		t.Errorf("left in the queue: %v", f.messages())
	}
}
