package mbox

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// mutt, driven in batch through a pseudo-terminal (script(1)), reads the
// mailbox and copies every message to another mbox. Its copy shows where
// it found each message's start and end: it adds Content-Length and Lines
// headers, so the bytes must be ours plus exactly those.
func TestMuttReadsBack(t *testing.T) {
	dir := t.TempDir()
	box := filepath.Join(dir, "box")
	out := filepath.Join(dir, "out")
	type msg struct{ sender, head, body string }
	msgs := []msg{
		{"ann@example.org", "Subject: one\n", "From the start\n>From quoted\n\nFrom after a blank line\n"},
		{"", "Subject: two\nX-Long: yes\n", "\n\nblank lines above and below\n\n"},
		{"bob@example.org", "Subject: three\n", "last\n"},
	}
	prefix := []string{"Return-Path: <x@y>", "Delivered-To: u@test.example"}
	for _, m := range msgs {
		add(t, box, m.sender, prefix, m.head+"\n"+m.body)
	}
	cmd := exec.Command("script", "-qec", `mutt -n -F /dev/null -f "$MUTT_BOX" -e 'set confirmcreate=no confirmappend=no wait_key=no mark_old=no' -e 'push "<tag-pattern>.<enter><tag-prefix><copy-message>'"$MUTT_OUT"'<enter><quit>"'`, "/dev/null")
	cmd.Env = append(os.Environ(), "HOME="+dir, "TERM=vt100", "MUTT_BOX="+box, "MUTT_OUT="+out)
	cmd.Dir = dir
	// Without ~/Mail mutt asks whether to create it, eating our keys.
	if err := os.Mkdir(filepath.Join(dir, "Mail"), 0o700); err != nil {
		t.Fatal(err)
	}
	// script(1) passes the end of its input on to mutt as a key, which
	// cuts the pushed commands short: keep its input open until it ends.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Run(); err != nil {
		t.Fatalf("mutt: %v\n%q", err, log.String())
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("mutt wrote nothing: %v", err)
	}
	var want []string
	for _, m := range msgs {
		quoted := strings.ReplaceAll(strings.ReplaceAll("\n"+m.body, "\n>From ", "\n>>From "), "\nFrom ", "\n>From ")[1:]
		want = append(want, fmt.Sprintf("From %s Thu Nov  5 09:04:05 2026\n%s\n%sContent-Length: %d\nLines: %d\n\n%s",
			FromSender(m.sender), strings.Join(prefix, "\n"), m.head, len(quoted), strings.Count(quoted, "\n"), quoted))
	}
	if w := strings.Join(want, "\n") + "\n"; string(got) != w {
		t.Fatalf("mutt screen %q\nmutt copy:\n%s\nwant:\n%s", log.String(), got, w)
	}
}
