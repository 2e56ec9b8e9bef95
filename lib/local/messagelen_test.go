package local

import (
	"context"
	"os"
	"strings"
	"testing"

	"omail/lib/outcome"
)

// envelopeTail stands for what follows the message in a single-file
// todo/ entry: it must never reach a mailbox.
const envelopeTail = "V1\x00Q1\x00Fx@y\x00RT 0 0 bob@test.example\x00.\x00OMQ2000000000000002b0000001c\n"

// WithMessageLen makes a delivery read the start of the file only, in
// this process.
func TestMessageLenInProcess(t *testing.T) {
	w := newWorld(t)
	msg := w.queued(hello + envelopeTail)
	ctx := WithMessageLen(context.Background(), int64(len(hello)))
	want(t, w.d.Deliver(ctx, msg, "ann@example.org", "bob@test.example"), outcome.OK, "mbox")
	got := w.read(w.spool + "/bob")
	if !strings.HasSuffix(got, "\n\n>From me\nhello\n\n") || strings.Contains(got, "OMQ2") {
		t.Errorf("mbox %q: want the message alone", got)
	}
	// A file shorter than the length is a temporary failure, never a cut
	// message delivered.
	ctx = WithMessageLen(context.Background(), int64(len(hello)+len(envelopeTail)+1))
	want(t, w.d.Deliver(ctx, msg, "ann@example.org", "bob@test.example"), outcome.Temp, "its state says")
}

// The length travels to a resident child with the message's descriptor.
func TestMessageLenResident(t *testing.T) {
	if !asRoot(t) {
		return
	}
	w := newRootWorld(t)
	w.write(w.msg, hello+envelopeTail, 0)
	os.Chmod(w.msg, 0o600)
	w.write(w.bobHome+"/.omail", "./mbox\n", bobUID)
	ctx := WithMessageLen(context.Background(), int64(len(hello)))
	want(t, w.d.DeliverAs(ctx, w.exe, nil, w.msg, "ann@example.org", "bob@test.example"), outcome.OK, "mbox")
	b, _ := os.ReadFile(w.bobHome + "/mbox")
	if got := string(b); !strings.HasSuffix(got, "\n\n>From me\nhello\n\n") || strings.Contains(got, "OMQ2") {
		t.Errorf("mbox %q: want the message alone", got)
	}
	if n := w.d.pool().started(); n != 1 {
		t.Errorf("%d children started, want the resident one", n)
	}
}
