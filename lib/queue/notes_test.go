package queue

import (
	"math"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"omail/lib/envelope"
)

// Hold and wake notes: written and removed durably, listed, dropped with
// the message; a queue made before hold/ existed gets the directory on
// the first hold; mailq marks a held message and its recipients.
func TestNotes(t *testing.T) {
	q := newQueue(t)
	id, err := q.Enqueue(strings.NewReader("Subject: x\n\nbody\n"), &envelope.Envelope{Sender: "a@b.example", Rcpts: []string{"c@d.example"}})
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(q.Path(DirHold, "")) // an older queue
	if q.Held(id) {
		t.Fatal("held before any hold")
	}
	if err := q.SetHold(id, true); err != nil {
		t.Fatal(err)
	}
	if ids, _ := q.HeldIDs(); !q.Held(id) || len(ids) != 1 || ids[0] != id {
		t.Fatalf("after SetHold: held %v, list %v", q.Held(id), ids)
	}
	var b strings.Builder
	if err := q.List(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "from <a@b.example>  held\n") || !strings.Contains(b.String(), "    held     <c@d.example>") {
		t.Errorf("listing:\n%s", b.String())
	}
	if err := q.Wake(id); err != nil || !q.Woken(id) {
		t.Fatalf("Wake: %v, woken %v", err, q.Woken(id))
	}
	if err := q.SetHold("../x", true); err == nil {
		t.Error("a hold note outside hold/")
	}
	if err := q.DropNotes(id); err != nil {
		t.Fatal(err)
	}
	if q.Held(id) || q.Woken(id) {
		t.Error("notes left after DropNotes")
	}
	if err := q.SetHold(id, false); err != nil {
		t.Errorf("releasing twice: %v", err)
	}
}

func TestDueOf(t *testing.T) {
	st := &State{ID: "1.2.3.4", Queued: 1, Sender: "a@b.example", Rcpts: []Rcpt{
		{Addr: "x@y.example", Status: Todo, Attempts: 7, NextTry: 500},
		{Addr: "z@y.example", Status: Done, Attempts: 1, NextTry: 100},
		{Addr: "w@y.example", Status: Todo, Attempts: 5, NextTry: 900},
	}}
	next, attempts, ok := DueOf(st.Marshal())
	if !ok || next != 500 || attempts != 5 {
		t.Errorf("DueOf = %d, %d, %v; want 500, 5, true", next, attempts, ok)
	}
	if n, ok := NextTryOf(st.Marshal()); !ok || n != 500 {
		t.Errorf("NextTryOf = %d, %v", n, ok)
	}
	if n, a, ok := DueOf([]byte("V1\x00Q1\x00Fa\x00RT 99999999999 5 a@b\x00.\x00")); !ok || n != 5 || a != math.MaxInt32 {
		t.Errorf("DueOf with a huge attempts count: %d, %d, %v", n, a, ok)
	}
}

func TestFormatAge(t *testing.T) {
	now := time.Unix(1700000000, 0)
	for d, want := range map[time.Duration]string{42 * time.Second: "42s", 17 * time.Minute: "17m", 5*time.Hour + 3*time.Minute: "5h03m", 12 * 24 * time.Hour: "12d", -time.Hour: "0s"} {
		if got := FormatAge(now, now.Add(-d)); got != want {
			t.Errorf("FormatAge(%v) = %q, want %q", d, got, want)
		}
	}
}

// A note written by root belongs to the queue's owner, so that the
// daemon running as that user can remove it; anyone else owns what they
// write (and can only write in a queue they may write in anyway).
func TestNoteOwnedLikeTheQueue(t *testing.T) {
	q := newQueue(t)
	want := os.Geteuid()
	if want == 0 {
		want = 65534
		for _, d := range []string{"", DirHold} {
			if err := os.Chown(q.Path(d, ""), want, want); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := q.SetHold("1.2.3.4", true); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(q.Path(DirHold, "1.2.3.4"))
	if err != nil {
		t.Fatal(err)
	}
	if uid := int(fi.Sys().(*syscall.Stat_t).Uid); uid != want {
		t.Errorf("note owned by %d, want %d", uid, want)
	}
}
