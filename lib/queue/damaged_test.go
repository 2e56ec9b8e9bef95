package queue

import (
	"bytes"
	"errors"
	"os"
	"testing"
)

// A damaged intent (tmp/ID.ready) that a crash left before its link into
// todo/ (docs/RELIABILITY.md, "Damaged queue files"). The retry never
// writes the derived message again, and never deletes the intent:
//   - an intent whose footer still reads is linked into todo/ as it is,
//     where the deliverer that takes it judges its state (and sets a
//     damaged one aside in corrupt/);
//   - an intent without a footer that reads cannot be told from a file a
//     deliverer cut back to its message (delivered, then removed): the
//     retry queues nothing, and the intent stays where it is, the same
//     bytes, until the cleanup of old files in tmp/.
func TestDamagedIntent(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(b []byte) []byte
		linked bool // into todo/ by the retry
	}{
		{"truncated", func(b []byte) []byte { return b[:len(b)/2] }, false},
		{"footer cut", func(b []byte) []byte { return b[:len(b)-1] }, false},
		{"empty", func(b []byte) []byte { return nil }, false},
		{"garbage", func(b []byte) []byte { return append(bytes.Repeat([]byte{0xff}, len(b)-1), '\n') }, false},
		{"footer of another version", func(b []byte) []byte { return bytes.Replace(b, []byte("OMQ2"), []byte("OMQ3"), 1) }, false},
		{"state of another version", func(b []byte) []byte { return bytes.Replace(b, []byte("V1\x00"), []byte("V2\x00"), 1) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := newQueue(t)
			id := DeriveID("1700000000.000000005.4242.7", "forward 0 x@y")
			if err := derive(t, q, id, "first\n"); err != nil {
				t.Fatal(err)
			}
			// The crash came at derived-intent: not linked into todo/.
			if err := os.Remove(q.Path(DirTodo, id)); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(q.readyPath(id))
			if err != nil {
				t.Fatal(err)
			}
			b = tc.damage(b)
			if err := os.WriteFile(q.readyPath(id), b, 0o640); err != nil {
				t.Fatal(err)
			}
			if err := derive(t, q, id, "second\n"); !errors.Is(err, ErrQueued) {
				t.Fatalf("repeat: %v, want ErrQueued", err)
			}
			if got, err := os.ReadFile(q.readyPath(id)); err != nil || !bytes.Equal(got, b) {
				t.Errorf("intent now %q, %v; was %q", got, err, b)
			}
			got, err := os.ReadFile(q.Path(DirTodo, id))
			switch {
			case tc.linked && (err != nil || !bytes.Equal(got, b)):
				t.Errorf("todo/ holds %q, %v; want the intent %q", got, err, b)
			case !tc.linked && err == nil:
				t.Errorf("a damaged intent was queued: %q", got)
			}
		})
	}
}
