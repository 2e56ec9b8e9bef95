package unpacker

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"omail/lib/bundle"
	"omail/lib/crashpoint"
	"omail/lib/mbox"
)

// recoverMbox after a crashed client run: what it takes back, and where
// delivery resumes, for each thing the mailbox may hold after the length
// the crashed run wrote down.
func TestRecoverMbox(t *testing.T) {
	id := bundle.NewID()
	before := "From x@y Thu Jan  1 00:00:00 1970\nSubject: old\n\nold mail\n\n"
	ours := func(i int, body string) string {
		return fmt.Sprintf("From a@x Thu Jan  1 00:00:00 1970\nReturn-Path: <a@x>\nDelivered-To: bob@k\n"+
			"Received: from proxy by k with OCMP %s%d); Thu, 01 Jan 1970 00:00:00 +0000\n\n%s\n\n", mark(id), i, body)
	}
	foreign := "From z@q Thu Jan  1 00:00:00 1970\nSubject: other\n\nReceived: from proxy by k with OCMP " + mark(id) + "9); in a body\n\n"
	// Someone else's message whose header carries the mark, with a
	// number no bundle has: it makes no one skip 2^40 messages.
	forged := "From z@q Thu Jan  1 00:00:00 1970\nReceived: from proxy by k with OCMP " + mark(id) + "1099511627776);\nSubject: forged\n\nx\n\n"
	for _, c := range []struct {
		name    string
		after   string // appended after the length written down
		rewrite bool   // the part before it changed too
		skip    string // the messages not to deliver again
		cut     bool
		fresh   bool // a new journal is to be written
	}{
		{"nothing", "", false, "", false, false},
		{"all ours", ours(1, "one") + ours(2, "tw"), false, "", true, false},
		{"ours, then someone else's", ours(1, "one") + ours(2, "two") + foreign, false, "1", false, false},
		{"someone else's only", foreign, false, "", false, false},
		{"ours, then a forged mark", ours(1, "one") + ours(2, "two") + forged + foreign, false, "1", false, false},
		// Rewritten: the messages of ours in it, found by their header
		// (not the one quoted in a body), but the last, which may be
		// the copy the crash cut short.
		{"rewritten", ours(1, "one") + ours(2, "two") + foreign, true, "1", false, true},
	} {
		u, h := setup(t)
		path := filepath.Join(h, "mail", "bob")
		os.WriteFile(path, []byte(before), 0o600)
		old := int64(len(before))
		mf, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		sig, err := mbox.Signature(mf, old)
		mf.Close()
		if err != nil {
			t.Fatal(err)
		}
		f, _ := os.OpenFile(path, os.O_WRONLY, 0)
		f.WriteAt([]byte(c.after), old)
		if c.rewrite {
			f.WriteAt([]byte("O"), 48) // "Old mail": a reader's rewrite
		}
		f.Close()
		a, err := mbox.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		skip, cut, fresh, err := u.recoverMbox(a, id, old, sig)
		a.Commit()
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var got []string
		for i := 0; i < 10; i++ {
			if skip[i] {
				got = append(got, fmt.Sprint(i))
			}
		}
		if strings.Join(got, " ") != c.skip || cut != c.cut || fresh != c.fresh {
			t.Errorf("%s: skip %v, cut %v; want %q, %v", c.name, got, cut, c.skip, c.cut)
		}
		data, _ := os.ReadFile(path)
		want := before + c.after
		if c.cut {
			want = before
		} else if c.rewrite {
			want = want[:48] + "O" + want[49:]
		}
		if string(data) != want {
			t.Errorf("%s: mailbox holds\n%s", c.name, data)
		}
	}
}

// crashed stands for the process killed at a crash point (the test's
// hook panics with it, and the run recovers it).
type crashed struct{}

// crashAtCommit kills a client run once its append is committed.
func crashAtCommit(p string) {
	if p == "unpack-committed" {
		panic(crashed{})
	}
}

// clientRuns is bob's mailbox mb, holding one old message, and run,
// which runs the client hook on a bundle of three messages for bob
// (the third's body is third) with the hooks hk: a crash (crashed) is
// an error "crashed".
func clientRuns(t *testing.T, third string) (u *Unpacker, mb string, run func(hk crashpoint.Hook) error) {
	u, h := setup(t)
	mb = filepath.Join(h, "mail", "bob")
	os.WriteFile(mb, []byte("From old@x Thu Jan  1 00:00:00 1970\nSubject: old\n\nold mail\n\n"), 0o600)
	file := filepath.Join(h, "in")
	writeBundle(t, file, []msg{
		{"a@x", []string{"bob@k"}, "Subject: one\n\nhi\n"},
		{"b@x", []string{"bob@k"}, "Subject: two\n\nhi\n"},
		{"c@x", []string{"bob@k"}, "Subject: three\n\n" + third},
	})
	return u, mb, func(hk crashpoint.Hook) (err error) {
		u.Crash = hk
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(crashed); !ok {
					panic(r)
				}
				err = errors.New("crashed")
			}
		}()
		return u.Unpack(file, "bob")
	}
}

// A run that resumed after foreign mail (skipping the messages a
// crashed run appended) and then failed, or crashed again, leaves the
// next run the same decision: the messages before the resume point are
// never appended twice.
func TestClientResumeFailsAgain(t *testing.T) {
	for _, second := range []string{"disk error", "crash"} {
		t.Run(second, func(t *testing.T) {
			u, mb, run := clientRuns(t, "hi\n")
			run(crashAtCommit)
			f, _ := os.OpenFile(mb, os.O_APPEND|os.O_WRONLY, 0)
			f.WriteString("From other@x Thu Jan  1 00:00:00 1970\nSubject: foreign\n\n")
			f.Close()
			if second == "disk error" {
				if err := run(func(p string) {
					if p == "?fault mbox-fsync" {
						panic(&crashpoint.Fault{Point: "mbox-fsync", Errno: syscall.ENOSPC})
					}
				}); outcome(err) != "temporary" {
					t.Fatalf("the resuming run: %v", err)
				}
			} else {
				run(crashAtCommit)
			}
			if err := run(nil); err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(mb)
			for s, most := range map[string]int{"one": 1, "two": 1, "three": 3, "foreign": 1} {
				if n := strings.Count(string(b), "Subject: "+s+"\n"); n < 1 || n > most {
					t.Errorf("%q %d times in the mailbox, want 1 to %d\n%s", s, n, most, logText(u))
				}
			}
		})
	}
}

// After a rewrite of the mailbox since a crashed run, the resuming run
// writes its journal afresh, with the messages it skips: when it is
// killed in the middle of a message, the next run cuts that back and
// appends it whole, skipping what the mailbox held already.
func TestClientRewrittenThenTorn(t *testing.T) {
	u, mb, run := clientRuns(t, "first line\nthe end of three\n")
	run(crashAtCommit)
	// A mail reader marks the old mail read and deletes message three.
	b, _ := os.ReadFile(mb)
	s := string(b)
	s = strings.Replace(s[:strings.Index(s, "From c@x")], "Subject: old\n", "Subject: old\nStatus: RO\n", 1)
	os.WriteFile(mb, []byte(s), 0o600)
	// The resuming run appends three, and is killed in the middle of it
	// (its dotlock not there to cut it back: a writer that cannot make
	// one, or a reboot).
	run(crashAtCommit)
	b, _ = os.ReadFile(mb)
	os.Truncate(mb, int64(strings.LastIndex(string(b), "first line\n")+len("first line\n")))
	if err := run(nil); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(mb)
	// Two, the last of ours the rewritten mailbox held, is appended again
	// (the one duplicate after a rewrite); three once, whole.
	for m, want := range map[string][2]int{"Subject: one\n": {1, 1}, "Subject: two\n": {1, 2}, "the end of three\n": {1, 1}, "Subject: three\n": {1, 1}} {
		if n := strings.Count(string(b), m); n < want[0] || n > want[1] {
			t.Errorf("%q %d times, want %d to %d:\n%s\n%s", m, n, want[0], want[1], b, logText(u))
		}
	}
}

// A copy the crash cut short, then a reader's rewrite that makes it look
// whole: the next run appends that last message again, whole.
func TestClientTornThenRewritten(t *testing.T) {
	u, mb, run := clientRuns(t, "first line\nthe end of three\n")
	run(crashAtCommit)
	// Killed in the middle of three, its dotlock gone (a reboot); then a
	// reader marks the old mail read and writes the mailbox back.
	b, _ := os.ReadFile(mb)
	s := string(b)
	s = s[:strings.LastIndex(s, "first line\n")+len("first line\n")]
	s = strings.Replace(s, "Subject: old\n", "Subject: old\nStatus: RO\n", 1) + "\n"
	os.WriteFile(mb, []byte(s), 0o600)
	if err := run(nil); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(mb)
	for m, want := range map[string][2]int{"Subject: one\n": {1, 1}, "Subject: two\n": {1, 1}, "the end of three\n": {1, 1}} {
		if n := strings.Count(string(b), m); n < want[0] || n > want[1] {
			t.Errorf("%q %d times, want %d to %d:\n%s\n%s", m, n, want[0], want[1], b, logText(u))
		}
	}
}

// Recovery looks at and cuts the file the Appender locked, never the
// path again: a mailbox name pointed at another file (root's) since the
// lock was taken does not get that file cut.
func TestRecoverUsesTheLockedFile(t *testing.T) {
	u, h := setup(t)
	mb := filepath.Join(h, "mail", "bob")
	os.WriteFile(mb, []byte("From x@y Thu Jan  1 00:00:00 1970\nSubject: old\n\nold\n\n"), 0o600)
	target := filepath.Join(h, "rootfile")
	os.WriteFile(target, []byte("line one of root's log\n"), 0o600)
	// A journal as a run wrote it while the name pointed at target, which
	// has grown since (a log).
	tf, _ := os.Open(target)
	old := int64(len("line one of root's log\n"))
	sig, _ := mbox.Signature(tf, old)
	tf.Close()
	f, _ := os.OpenFile(target, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("line two\nline three\n")
	f.Close()
	a, err := mbox.Open(mb)
	if err != nil {
		t.Fatal(err)
	}
	// The name is pointed at target once the lock is taken.
	os.Rename(mb, mb+".real")
	os.Symlink(target, mb)
	_, cut, _, err := u.recoverMbox(a, bundle.NewID(), old, sig)
	a.Commit()
	if b, _ := os.ReadFile(target); cut || string(b) != "line one of root's log\nline two\nline three\n" {
		t.Errorf("cut %v, %v: the link's target now holds %q", cut, err, b)
	}
}
