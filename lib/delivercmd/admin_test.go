package delivercmd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"omail/lib/envelope"
	"omail/lib/home"
	"omail/lib/outbox"
	"omail/lib/qexit"
	"omail/lib/queue"
)

// omail-deliver -hold/-release/-delete/-retry: IDs as mailq prints them
// (queue ids, which also name their outbox entries, and ENDPOINT/NAME),
// -from/-to/-all selections, and the exit codes.
func TestAdminCommands(t *testing.T) {
	h := t.TempDir()
	q := queue.New(h)
	if err := q.Init(); err != nil {
		t.Fatal(err)
	}
	enq := func(sender, rcpt string) string {
		id, err := q.Enqueue(strings.NewReader("Subject: x\n\nbody\n"), &envelope.Envelope{Sender: sender, Rcpts: []string{rcpt}})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	a := enq("alice@k.example", "x@far.example")
	b := enq("bob@k.example", "y@far.example")
	msg := filepath.Join(t.TempDir(), "m")
	os.WriteFile(msg, []byte("Subject: y\n\nbody\n"), 0o644)
	outbox.Put(h, "k1", a, msg, "alice@k.example", []string{"x@kiosk.example"})
	outbox.Put(h, "k1", "1.1.1.9", msg, "carol@k.example", []string{"z@kiosk.example"})

	env := home.Env{"OMAIL_HOME=" + h}
	run := func(args ...string) (int, string) {
		var out, errs strings.Builder
		code := Run(append([]string{"omail-deliver"}, args...), env, strings.NewReader(""), &out, &errs)
		return code, errs.String()
	}
	// A queue id holds the message and its outbox entry.
	if code, log := run("-hold", a); code != qexit.OK || !strings.Contains(log, "msg "+a+" held") || !strings.Contains(log, "outbox k1/"+a+" held") {
		t.Fatalf("-hold: %d\n%s", code, log)
	}
	if held, _ := outbox.ListHeld(h, "k1"); !q.Held(a) || len(held) != 1 {
		t.Fatalf("after -hold: queue %v, outbox %v", q.Held(a), held)
	}
	// An unknown id is 100; the known ones are still acted on.
	if code, log := run("-release", "9.9.9.9", a); code != qexit.Perm || q.Held(a) || !strings.Contains(log, "9.9.9.9: no such message") {
		t.Errorf("-release with an unknown id: %d, held %v\n%s", code, q.Held(a), log)
	}
	if held, _ := outbox.ListHeld(h, "k1"); len(held) != 0 {
		t.Errorf("outbox entry still held: %v", held)
	}
	// -from selects by sender in the queue and the outbox.
	if code, _ := run("-hold", "-from", "BOB@k.example"); code != qexit.OK || !q.Held(b) || q.Held(a) {
		t.Errorf("-hold -from: %d, a %v, b %v", code, q.Held(a), q.Held(b))
	}
	if !q.Woken(a) {
		t.Error("a released message is not due at once")
	}
	q.DropWake(a)
	if code, _ := run("-retry", "-to", "y@far.example"); code != qexit.OK || !q.Woken(b) || q.Woken(a) {
		t.Errorf("-retry -to: %d", code)
	}
	// Addresses as mailq prints them: <ADDR>, and <> for the null
	// sender of a bounce (also given as '').
	bounce := enq("", "alice@k.example")
	if code, log := run("-hold", "-from", "<>"); code != qexit.OK || !q.Held(bounce) || q.Held(a) {
		t.Errorf("-hold -from '<>': %d, bounce %v, a %v\n%s", code, q.Held(bounce), q.Held(a), log)
	}
	if code, _ := run("-release", "-from", ""); code != qexit.OK || q.Held(bounce) {
		t.Errorf("-release -from '': %d, bounce %v", code, q.Held(bounce))
	}
	if code, _ := run("-hold", "-from", "<alice@k.example>"); code != qexit.OK || !q.Held(a) || q.Held(bounce) {
		t.Errorf("-hold -from '<alice@k.example>': %d, a %v", code, q.Held(a))
	}
	if code, _ := run("-release", "-to", "<X@FAR.example>"); code != qexit.OK || q.Held(a) {
		t.Errorf("-release -to '<X@FAR.example>': %d, a %v", code, q.Held(a))
	}
	q.DropWake(a)
	q.DropWake(bounce)
	// ENDPOINT/NAME names one entry.
	if code, log := run("-delete", "k1/1.1.1.9"); code != qexit.OK || !strings.Contains(log, "outbox k1/1.1.1.9 deleted by the administrator, not bounced: from <carol@k.example>") {
		t.Errorf("-delete k1/1.1.1.9: %d\n%s", code, log)
	}
	if code, _ := run("-delete", "-all"); code != qexit.OK {
		t.Errorf("-delete -all: %d", code)
	}
	if ids, _ := q.AllIDs(); len(ids) != 0 {
		t.Errorf("left in the queue: %v", ids)
	}
	if names, _ := outbox.List(h, "k1"); len(names) != 0 {
		t.Errorf("left in the outbox: %v", names)
	}
	for _, bad := range [][]string{{"-hold"}, {"-hold", "-from"}, {"-retry", "-bogus"}, {"-hold", "-to", "<>"}} {
		if code, _ := run(bad...); code != qexit.Usage {
			t.Errorf("%v: exit %d, want %d", bad, code, qexit.Usage)
		}
	}
	if code, _ := run("-delete", a); code != qexit.Perm {
		t.Errorf("deleting a deleted message: %d", code)
	}
}
