package injectcmd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"omail/lib/home"
	"omail/lib/internal/testfake"
)

// sendmail -f names the author of a message without From:, as Postfix
// does; a From: the message has is kept, and the null sender leaves the
// login name in From:.
func TestSenderFlagSetsMissingFrom(t *testing.T) {
	for _, c := range []struct {
		name, flag, msg, wantFrom, wantEnv string
	}{
		{"-f sets From", "-fboss@corp.example", "Subject: s\n\nbody\n", "From: boss@corp.example\n", "Fboss@corp.example\x00"},
		{"-f bare name qualified", "-fboss", "Subject: s\n\nbody\n", "From: boss@h.example\n", "Fboss@h.example\x00"},
		{"From kept", "-fboss@corp.example", "From: Ann <ann@x.example>\nSubject: s\n\nbody\n", "From: Ann <ann@x.example>\n", "Fboss@corp.example\x00"},
		{"null sender", "-f<>", "Subject: s\n\nbody\n", "From: alice@h.example\n", "F\x00"},
		{"no -f", "", "Subject: s\n\nbody\n", "From: alice@h.example\n", "Falice@h.example\x00"},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := []string{"sendmail", "-oi"}
			if c.flag != "" {
				args = append(args, c.flag)
			}
			args = append(args, "bob@x.example")
			r := inject(t, c.msg, args...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			hdr, _, _ := strings.Cut(r.msg, "\n\n")
			if strings.Count(hdr, "From:") != 1 || !strings.Contains(hdr+"\n", c.wantFrom) {
				t.Errorf("header:\n%s\nwant %q", hdr, c.wantFrom)
			}
			if !strings.HasPrefix(r.env, c.wantEnv) {
				t.Errorf("envelope %q, want it to start %q", r.env, c.wantEnv)
			}
		})
	}
}

// -f takes one address in any header form; "<>" or nothing is the null
// sender; two addresses, or a control character, exit 100 and queue
// nothing.
func TestSenderFlagForms(t *testing.T) {
	for _, c := range []struct{ flag, wantEnv, wantFrom string }{
		{"Joe <joe@x.example>", "Fjoe@x.example\x00", "From: joe@x.example\n"},
		{"<joe@x.example>", "Fjoe@x.example\x00", "From: joe@x.example\n"},
		{" joe@x.example (Joe) ", "Fjoe@x.example\x00", "From: joe@x.example\n"},
		{`"Doe, Joe" <joe>`, "Fjoe@h.example\x00", "From: joe@h.example\n"},
		{"<>", "F\x00", "From: alice@h.example\n"},
		{"", "F\x00", "From: alice@h.example\n"},
		{"Nobody <>", "F\x00", "From: alice@h.example\n"},
	} {
		r := inject(t, "Subject: s\n\nbody\n", "sendmail", "-f", c.flag, "bob@x.example")
		if r.code != 0 || !strings.HasPrefix(r.env, c.wantEnv) || !strings.Contains(r.msg, c.wantFrom) {
			t.Errorf("-f %q: exit %d %s, envelope %q, message %q", c.flag, r.code, r.stderr, r.env, r.msg)
		}
	}
	for _, flag := range []string{"a@x.example, b@y.example", "a@x.example b@y.example", "a@x.example\nX: y", "a\x01@x.example"} {
		r := inject(t, "Subject: s\n\nbody\n", "sendmail", "-f", flag, "bob@x.example")
		if r.code != 100 || r.msg != "" || !strings.Contains(r.stderr, "bad sender") {
			t.Errorf("-f %q: exit %d, stderr %q, queued %q", flag, r.code, r.stderr, r.msg)
		}
	}
}

// injected is what one Run did: its exit code and stderr, and the one
// message it queued ("" when it queued none).
type injected struct {
	code             int
	stderr, msg, env string
}

// inject runs omail-inject with args (args[0] the program name) on msg,
// in a fresh OMAIL_HOME (me: h.example) with a fake queue, as user alice.
func inject(t *testing.T, msg string, args ...string) injected {
	t.Helper()
	h := t.TempDir()
	os.MkdirAll(filepath.Join(h, "control"), 0o755)
	os.WriteFile(filepath.Join(h, "control", "me"), []byte("h.example\n"), 0o644)
	q := testfake.NewQueue(t)
	env := home.Env{"OMAIL_HOME=" + h, "OMAILQUEUE=" + q.Prog, "USER=alice", "PATH=/usr/bin:/bin"}
	var stdout, stderr strings.Builder
	r := injected{code: Run(args, env, strings.NewReader(msg), &stdout, &stderr), stderr: stderr.String()}
	switch runs := q.Runs(); len(runs) {
	case 0:
	case 1:
		r.msg, r.env = string(runs[0].Message), string(runs[0].Envelope)
	default:
		t.Fatalf("%d runs of the queue", len(runs))
	}
	return r
}
