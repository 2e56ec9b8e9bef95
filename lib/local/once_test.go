package local

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"omail/lib/outcome"
)

// countFiles counts the messages in a Maildir (new/ and cur/).
func countFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	for _, d := range []string{"new", "cur"} {
		es, err := os.ReadDir(filepath.Join(dir, d))
		if err != nil {
			t.Fatal(err)
		}
		n += len(es)
	}
	return n
}

// The same delivery made again (a retry after a crash that came before
// the queue's record) finds the copies it made: one per target, even
// when a reader has moved the Maildir file to cur/ with flags. Another
// message, or another recipient, is another delivery.
func TestRepeatedDeliveryMadeOnce(t *testing.T) {
	w := newWorld(t)
	w.maildir(filepath.Join(w.bobHome, "Maildir"))
	w.file(filepath.Join(w.bobHome, ".omail"), "./Maildir/\n./mbox\n./mbox\n")
	msg := w.queued(hello)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		want(t, w.d.Deliver(ctx, msg, "a@b", "bob@test.example"), outcome.OK, "maildir")
		if i == 0 {
			ents, _ := os.ReadDir(filepath.Join(w.bobHome, "Maildir/new"))
			os.Rename(filepath.Join(w.bobHome, "Maildir/new", ents[0].Name()), filepath.Join(w.bobHome, "Maildir/cur", ents[0].Name()+":2,S"))
		}
	}
	if n := countFiles(t, filepath.Join(w.bobHome, "Maildir")); n != 1 {
		t.Fatalf("%d Maildir files", n)
	}
	// The .omail names ./mbox twice: two targets, two copies, once each.
	if n := strings.Count(w.read(filepath.Join(w.bobHome, "mbox")), "\nhello\n"); n != 2 {
		t.Fatalf("%d mbox copies, want 2", n)
	}
	want(t, w.d.Deliver(ctx, w.queued(hello), "a@b", "bob@test.example"), outcome.OK, "maildir")
	want(t, w.d.Deliver(ctx, msg, "a@b", "Bob@test.example"), outcome.OK, "maildir")
	if n := countFiles(t, filepath.Join(w.bobHome, "Maildir")); n != 3 {
		t.Fatalf("%d Maildir files after two other deliveries, want 3", n)
	}
}

// On a first attempt (the queue manager's mark) nothing is looked for:
// an mbox gets what it is given, even twice.
func TestFirstAttemptDoesNotLook(t *testing.T) {
	w := newWorld(t)
	w.file(filepath.Join(w.bobHome, ".omail"), "./mbox\n")
	msg := w.queued(hello)
	ctx := FirstAttempt(context.Background())
	for i := 0; i < 2; i++ {
		want(t, w.d.Deliver(ctx, msg, "a@b", "bob@test.example"), outcome.OK, "mbox")
	}
	if n := strings.Count(w.read(filepath.Join(w.bobHome, "mbox")), "\nhello\n"); n != 2 {
		t.Fatalf("%d mbox copies, want 2", n)
	}
}

// Every step through an alias is its own delivery: an alias naming \bob
// twice delivers two copies, once each; a program gets DELIVERY_ID, the
// same at every attempt and different per target.
func TestDeliveryIDsThroughAliases(t *testing.T) {
	w := newWorld(t)
	w.file(filepath.Join(w.bobHome, ".omail"), "./mbox\n|echo \"$DELIVERY_ID\" >> ids\n")
	w.control("aliases", `twice: \bob, \bob`)
	msg := w.queued(hello)
	for i := 0; i < 2; i++ {
		want(t, w.d.Deliver(context.Background(), msg, "a@b", "twice@test.example"), outcome.OK, "mbox")
	}
	if n := strings.Count(w.read(filepath.Join(w.bobHome, "mbox")), "\nhello\n"); n != 2 {
		t.Fatalf("%d mbox copies, want 2", n)
	}
	ids := strings.Fields(w.read(filepath.Join(w.bobHome, "ids")))
	id := DeliveryID(msg, "twice@test.example")
	wantIDs := []string{id + "/u0/1", id + "/u1/1", id + "/u0/1", id + "/u1/1"}
	if strings.Join(ids, " ") != strings.Join(wantIDs, " ") {
		t.Fatalf("DELIVERY_IDs %q, want %q", ids, wantIDs)
	}
}

// A Maildir file's name is the queue id's time, pid and counter and a
// hash of the target: the same at every attempt, different per target.
func TestMaildirName(t *testing.T) {
	a := maildirName("1764032705.123456789.4242.3.abcd1234/0")
	if !strings.HasPrefix(a, "1764032705.M123456P4242Q3E") || strings.ContainsAny(a, "/:") {
		t.Fatalf("name %q", a)
	}
	if a != maildirName("1764032705.123456789.4242.3.abcd1234/0") || a == maildirName("1764032705.123456789.4242.3.abcd1234/1") {
		t.Fatal("names not stable or not distinct")
	}
	if b := maildirName("/some/file.abcd1234/0"); !strings.HasPrefix(b, "0.E") || strings.ContainsAny(b, "/:") {
		t.Fatalf("name %q", b)
	}
}
