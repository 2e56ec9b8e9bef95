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
			h := t.TempDir()
			os.MkdirAll(filepath.Join(h, "control"), 0o755)
			os.WriteFile(filepath.Join(h, "control", "me"), []byte("h.example\n"), 0o644)
			q := testfake.NewQueue(t)
			env := home.Env{"OMAIL_HOME=" + h, "OMAILQUEUE=" + q.Prog, "USER=alice", "PATH=/usr/bin:/bin"}
			args := []string{"sendmail", "-oi"}
			if c.flag != "" {
				args = append(args, c.flag)
			}
			args = append(args, "bob@x.example")
			var stdout, stderr strings.Builder
			if code := Run(args, env, strings.NewReader(c.msg), &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			runs := q.Runs()
			if len(runs) != 1 {
				t.Fatalf("%d runs of the queue", len(runs))
			}
			msg := string(runs[0].Message)
			hdr, _, _ := strings.Cut(msg, "\n\n")
			if strings.Count(hdr, "From:") != 1 || !strings.Contains(hdr+"\n", c.wantFrom) {
				t.Errorf("header:\n%s\nwant %q", hdr, c.wantFrom)
			}
			if !strings.HasPrefix(string(runs[0].Envelope), c.wantEnv) {
				t.Errorf("envelope %q, want it to start %q", runs[0].Envelope, c.wantEnv)
			}
		})
	}
}
