package injectcmd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"omail/lib/envelope"
	"omail/lib/outbox"
	"omail/lib/queue"
)

// mailq shows the queue, held messages as held, then the OCMP outbox per
// endpoint and a summary; mailq ENDPOINT lists its entries.
func TestMailqShowsQueueOutboxAndHeld(t *testing.T) {
	home := t.TempDir()
	q := queue.New(home)
	if err := q.Init(); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(home, "control"), 0o755)
	ocmp := t.TempDir()
	os.WriteFile(filepath.Join(home, "control", "ocmpdir"), []byte(ocmp+"\n"), 0o644)
	now := time.Now()
	var b strings.Builder
	if err := mailq(home, "", now, &b); err != nil {
		t.Fatal(err)
	}
	if b.String() != "Mail queue is empty\n" {
		t.Errorf("empty queue and outbox:\n%s", b.String())
	}

	id, err := q.Enqueue(strings.NewReader("Subject: x\n\nbody\n"), &envelope.Envelope{Sender: "a@b.example", Rcpts: []string{"c@d.example"}})
	if err != nil {
		t.Fatal(err)
	}
	q.SetHold(id, true)
	msg := filepath.Join(t.TempDir(), "m")
	os.WriteFile(msg, []byte("Subject: y\n\nbody\n"), 0o644)
	for _, n := range []string{"1.1.1.1", "1.1.1.2", "1.1.1.3"} {
		if err := outbox.Put(home, "k1", n, msg, "s@b.example", []string{"u@k.example"}); err != nil {
			t.Fatal(err)
		}
	}
	outbox.Put(home, "k2", "1.1.1.1", msg, "s@b.example", []string{"w@k.example"})
	outbox.Hold(home, "k1", "1.1.1.3")
	os.MkdirAll(filepath.Join(ocmp, "k2", "mail", "upload"), 0o755)
	old := now.Add(-3 * 24 * time.Hour)
	os.Chtimes(filepath.Join(outbox.Path(home, "k1"), "1.1.1.1"), old, old)

	b.Reset()
	if err := mailq(home, "", now, &b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	want := []string{
		"    held     <c@d.example>",
		"1 message(s) in the queue",
		"OCMP outbox:",
		"  k1  3 message(s) (1 held)  ",
		"  k2  1 message(s)  ",
		"queue: 1 message(s); outbox: 4 message(s) for 2 endpoint(s)",
	}
	if len(lines) != 7 || !strings.HasSuffix(lines[0], "from <a@b.example>  held") {
		t.Fatalf("listing:\n%s", out)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i+1], w) {
			t.Errorf("line %d: %q, want %q...", i+2, lines[i+1], w)
		}
	}
	if !strings.Contains(lines[4], "oldest 3d  upload directory MISSING: "+filepath.Join(ocmp, "k1", "mail", "upload")) ||
		!strings.HasSuffix(lines[5], "upload directory present") {
		t.Errorf("endpoint lines:\n%s\n%s", lines[4], lines[5])
	}

	b.Reset()
	if err := mailq(home, "k1", now, &b); err != nil {
		t.Fatal(err)
	}
	out = b.String()
	for _, w := range []string{"k1/1.1.1.1  age 3d  ", "k1/1.1.1.3  age ", "from <s@b.example>  held\n    held     <u@k.example>\n", "    waiting  <u@k.example>\n", "outbox k1: 3 message(s), 1 held; upload directory MISSING"} {
		if !strings.Contains(out, w) {
			t.Errorf("mailq k1 lacks %q:\n%s", w, out)
		}
	}
	if err := mailq(home, "../x", now, &b); err == nil {
		t.Error("a bad endpoint name listed")
	}
}
