package queue

import (
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"omail/lib/envelope"
)

func TestDeriveID(t *testing.T) {
	orig := "1700000000.000000005.4242.7"
	a, b := DeriveID(orig, "forward 0 x@y"), DeriveID(orig, "forward 1 z@y")
	if a != DeriveID(orig, "forward 0 x@y") {
		t.Fatal("DeriveID is not stable")
	}
	if a == b || a == DeriveID("1700000000.000000005.4242.8", "forward 0 x@y") {
		t.Fatal("two derivations gave one id")
	}
	for _, id := range []string{a, b, DeriveID(a, "bounce 0"), DeriveID("not an id", "k")} {
		if !ValidID(id) {
			t.Errorf("DeriveID made %q, not a valid id", id)
		}
	}
	if !strings.HasPrefix(a, "1700000000.000000005.") || !IDLess(orig, a) {
		t.Errorf("%s does not sort right after its original %s", a, orig)
	}
}

// derive writes and commits derived message id, or reports ErrQueued.
func derive(t *testing.T, q *Queue, id, msg string) error {
	t.Helper()
	d, err := q.BeginDerived(id)
	if err != nil {
		return err
	}
	defer d.Abort()
	if _, err := io.WriteString(d, msg); err != nil {
		t.Fatal(err)
	}
	got, err := d.Commit(&envelope.Envelope{Sender: "a@b", Rcpts: []string{"c@d"}})
	if err == nil && got != id {
		t.Fatalf("committed as %s, want %s", got, id)
	}
	return err
}

func readMessage(t *testing.T, q *Queue, id string) string {
	t.Helper()
	r, c, err := q.OpenMessage(id)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDerivedOnce(t *testing.T) {
	q := newQueue(t)
	id := DeriveID("1700000000.000000005.4242.7", "forward 0 x@y")
	if err := derive(t, q, id, "first\n"); err != nil {
		t.Fatal(err)
	}
	if got := readMessage(t, q, id); got != "first\n" {
		t.Fatalf("queued %q", got)
	}
	// The repeat of an attempt that queued it: nothing is written.
	if err := derive(t, q, id, "second\n"); !errors.Is(err, ErrQueued) {
		t.Fatalf("repeat: %v, want ErrQueued", err)
	}
	if got := readMessage(t, q, id); got != "first\n" {
		t.Fatalf("the repeat changed the message to %q", got)
	}
	q.Forget(id)
	if _, err := os.Lstat(q.readyPath(id)); !os.IsNotExist(err) {
		t.Fatalf("intent still there after Forget: %v", err)
	}
	if n, _ := q.Names(DirTmp); len(n) != 0 {
		t.Fatalf("tmp/ holds %v", n)
	}
}

// A crash after the intent and before the link: the repeat links the
// message the first attempt wrote, and writes nothing.
func TestDerivedResumesLink(t *testing.T) {
	q := newQueue(t)
	id := DeriveID("1700000000.000000005.4242.7", "bounce 0")
	if err := derive(t, q, id, "first\n"); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(q.Path(DirTodo, id)); err != nil { // as if never linked
		t.Fatal(err)
	}
	if err := derive(t, q, id, "second\n"); !errors.Is(err, ErrQueued) {
		t.Fatalf("repeat: %v, want ErrQueued", err)
	}
	if got := readMessage(t, q, id); got != "first\n" {
		t.Fatalf("after the resumed link the queue holds %q", got)
	}
}

// A repeat after the message left todo/ queues nothing: delivered and
// removed (its file, cut back by the deliverer, says so), or set aside
// in corrupt/.
func TestDerivedNotQueuedAgain(t *testing.T) {
	for name, gone := range map[string]func(q *Queue, id string) error{
		"delivered": func(q *Queue, id string) error {
			// What a deliverer does to the same inode: cut it back, remove it.
			if err := os.Truncate(q.Path(DirTodo, id), int64(len("first\n"))); err != nil {
				return err
			}
			return os.Remove(q.Path(DirTodo, id))
		},
		"set aside": func(q *Queue, id string) error {
			return os.Rename(q.Path(DirTodo, id), q.Path(DirCorrupt, id+"."+DirTodo))
		},
	} {
		q := newQueue(t)
		id := DeriveID("1700000000.000000005.4242.7", "forward 3 x@y")
		if err := derive(t, q, id, "first\n"); err != nil {
			t.Fatal(err)
		}
		if err := gone(q, id); err != nil {
			t.Fatal(err)
		}
		if err := derive(t, q, id, "second\n"); !errors.Is(err, ErrQueued) {
			t.Fatalf("%s: repeat: %v, want ErrQueued", name, err)
		}
		if ids, _ := q.AllIDs(); len(ids) != 0 {
			t.Fatalf("%s: queued again: %v", name, ids)
		}
	}
}

func TestDerivedBadID(t *testing.T) {
	q := newQueue(t)
	if _, err := q.BeginDerived("../x"); err == nil {
		t.Fatal("a bad id was accepted")
	}
}
