package injectcmd

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"omail/lib/home"
)

func TestParseArgs(t *testing.T) {
	s := func(v string) *string { return &v }
	for _, c := range []struct {
		args []string
		want Options
	}{
		{[]string{"sendmail", "a@b", "c"}, Options{Rcpts: []string{"a@b", "c"}}},
		{[]string{"sendmail", "-t", "-i"}, Options{UseHeaders: true, IgnoreDots: true}},
		{[]string{"sendmail", "-oi", "-f", "me@x", "--", "-odd@x"}, Options{IgnoreDots: true, Sender: s("me@x"), Rcpts: []string{"-odd@x"}, IgnoredArgs: []string{"-oi"}}},
		{[]string{"sendmail", "-fme@x", "-FMy Name", "a"}, Options{Sender: s("me@x"), FullName: "My Name", Rcpts: []string{"a"}}},
		{[]string{"sendmail", "-oem", "-odi", "-v", "-N", "never", "a"}, Options{Rcpts: []string{"a"}, IgnoredArgs: []string{"-oem", "-odi", "-v", "-N"}}},
		{[]string{"sendmail", "-bp"}, Options{Mode: ModeList}},
		{[]string{"/usr/bin/mailq"}, Options{Mode: ModeList}},
		{[]string{"mailq", "-v", "k1"}, Options{Mode: ModeList, Rcpts: []string{"k1"}}},
		{[]string{"sendmail", "-q"}, Options{Mode: ModeFlush}},
		{[]string{"sendmail", "-q30m"}, Options{Mode: ModeFlush}},
		{[]string{"sendmail", "-bs"}, Options{Mode: ModeSMTP}},
		{[]string{"sendmail", "-bi"}, Options{Mode: ModeAliases}},
		{[]string{"sendmail", "-r", "", "a"}, Options{Sender: s(""), Rcpts: []string{"a"}}},
		// Grouped as getopt groups them: a value takes the rest of its
		// argument, or the next one.
		{[]string{"sendmail", "-ti"}, Options{UseHeaders: true, IgnoreDots: true}},
		{[]string{"sendmail", "-it", "a"}, Options{UseHeaders: true, IgnoreDots: true, Rcpts: []string{"a"}}},
		{[]string{"sendmail", "-tfme@x", "a"}, Options{UseHeaders: true, Sender: s("me@x"), Rcpts: []string{"a"}}},
		{[]string{"sendmail", "-itf", "me@x", "a"}, Options{UseHeaders: true, IgnoreDots: true, Sender: s("me@x"), Rcpts: []string{"a"}}},
		{[]string{"sendmail", "-toi", "a"}, Options{UseHeaders: true, IgnoreDots: true, IgnoredArgs: []string{"-oi"}, Rcpts: []string{"a"}}},
		{[]string{"sendmail", "-oiT"}, Options{IgnoreDots: true, IgnoredArgs: []string{"-oiT"}}},
		{[]string{"sendmail", "-vtbm", "a"}, Options{UseHeaders: true, IgnoredArgs: []string{"-v"}, Rcpts: []string{"a"}}},
		// -p and -M take a value and are ignored.
		{[]string{"sendmail", "-p", "UUCP:host", "-pESMTP", "-MXv", "-M", "Yw", "a"}, Options{Rcpts: []string{"a"}, IgnoredArgs: []string{"-p", "-pESMTP", "-MXv", "-M"}}},
		// -I and the name newaliases are -bi.
		{[]string{"sendmail", "-I"}, Options{Mode: ModeAliases}},
		{[]string{"/usr/bin/newaliases"}, Options{Mode: ModeAliases}},
		{[]string{"newaliases", "-v"}, Options{Mode: ModeAliases}},
	} {
		got, err := ParseArgs(c.args)
		if err != nil {
			t.Errorf("%q: %v", c.args, err)
			continue
		}
		if !reflect.DeepEqual(*got, c.want) {
			t.Errorf("%q:\n got %+v\nwant %+v", c.args, *got, c.want)
		}
	}
	for _, bad := range [][]string{{"sendmail", "-f"}, {"sendmail", "-Z"}, {"sendmail", "-bz"}, {"sendmail", "-tZ"}, {"sendmail", "-tf"}, {"sendmail", "-p"}, {"newaliases", "bob"}} {
		if _, err := ParseArgs(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// -bi, -I and the name newaliases rebuild control/aliases.cdb with
// omail-deliver -newaliases's code, in this process: no omail-deliver
// is found here to run. A bad line is exit 100 and names it.
// TestNewaliases: -bi, -I and the name newaliases run omail-deliver
// -newaliases (a stand-in here, which shows what it was given and
// passes its exit code back).
func TestNewaliases(t *testing.T) {
	bin := t.TempDir()
	log := filepath.Join(bin, "args")
	script := "#!/bin/sh\necho \"$@\" >>" + log + "\necho built\nexit ${NEWALIASES_EXIT:-0}\n"
	if err := os.WriteFile(filepath.Join(bin, "omail-deliver"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"sendmail", "-bi"}, {"sendmail", "-I"}, {"/usr/lib/newaliases"}} {
		os.Remove(log)
		env := home.Env{"OMAIL_HOME=" + t.TempDir(), "OMAIL_BINDIR=" + bin, "PATH=/usr/bin:/bin"}
		var stdout, stderr strings.Builder
		if code := Run(args, env, strings.NewReader(""), &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "built") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, stdout.String(), stderr.String())
		}
		if got, _ := os.ReadFile(log); string(got) != "-newaliases\n" {
			t.Errorf("%q: omail-deliver ran with %q, want -newaliases", args, got)
		}
		env = append(env, "NEWALIASES_EXIT=100")
		if code := Run(args, env, strings.NewReader(""), &stdout, &stderr); code != 100 {
			t.Errorf("%q: omail-deliver exit 100 came back as %d", args, code)
		}
	}
}

func readAll(t *testing.T, in string, ignoreDots bool) ([]Field, string) {
	t.Helper()
	r := NewReader(strings.NewReader(in), ignoreDots)
	f, _, err := r.ReadHeader()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := r.WriteBody(&b); err != nil {
		t.Fatal(err)
	}
	return f, b.String()
}

func TestReaderDotsAndLineEnds(t *testing.T) {
	f, body := readAll(t, "Subject: a\r\nTo: b,\r\n  c\r\n\r\nline\r\n.\r\nafter\n", false)
	if len(f) != 2 || string(f[1].Raw) != "To: b,\n  c\n" || f[1].Value() != "b,  c" {
		t.Errorf("fields = %q", f)
	}
	if body != "line\n" {
		t.Errorf("body = %q (the lone dot must end the message)", body)
	}
	_, body = readAll(t, "Subject: a\n\nline\n.\nafter\n", true)
	if body != "line\n.\nafter\n" {
		t.Errorf("with -i: body = %q", body)
	}
	// ".." is not a lone dot; a dot inside a line is text.
	_, body = readAll(t, "S: a\n\n..\n. \nx.\n", false)
	if body != "..\n. \nx.\n" {
		t.Errorf("body = %q", body)
	}
	// No blank line: the first non-header line starts the body.
	f, body = readAll(t, "Subject: a\nthis is text\n", false)
	if len(f) != 1 || body != "this is text\n" {
		t.Errorf("no separator: %q %q", f, body)
	}
	// A very long header line is one field.
	long := "X-Long: " + strings.Repeat("y", 200000) + "\n\nb\n"
	f, body = readAll(t, long, false)
	if len(f) != 1 || len(f[0].Raw) != len(long)-3 || body != "b\n" {
		t.Errorf("long header: %d fields, %d bytes, body %q", len(f), len(f[0].Raw), body)
	}
}

// Leading mbox "From " (and ">From ") lines are dropped, as Postfix's
// sendmail does; "From:" is a field, and a "From " line later is text.
func TestReaderDropsLeadingFromLines(t *testing.T) {
	for _, c := range []struct{ in, fields, body string }{
		{"From bob@x.example Tue Dec  1 10:00:00 2026\nTo: a@x.example\nSubject: s\n\nbody\n", "To: a@x.example\nSubject: s\n", "body\n"},
		{">From a\r\nFrom b\n>>From c\nSubject: s\n\nFrom me\n", "Subject: s\n", "From me\n"},
		{"From " + strings.Repeat("x", 200000) + "\nSubject: s\n\nb\n", "Subject: s\n", "b\n"},
		{"From: a@x.example\nSubject: s\n\nb\n", "From: a@x.example\nSubject: s\n", "b\n"},
		{"Subject: s\nFrom x\n\nb\n", "Subject: s\n", "From x\n\nb\n"},
		{"From x\nbody only\n", "", "body only\n"},
		{"From x\n", "", ""},
		{"From x\n.\nnot read\n", "", ""},
		{"Fromage: yes\n\nb\n", "Fromage: yes\n", "b\n"},
	} {
		f, body := readAll(t, c.in, false)
		var got strings.Builder
		for _, fl := range f {
			got.Write(fl.Raw)
		}
		if got.String() != c.fields || body != c.body {
			t.Errorf("%.40q: fields %.60q body %.60q, want %q %q", c.in, got.String(), body, c.fields, c.body)
		}
	}
	r := inject(t, "From bob@x.example Tue Dec  1 10:00:00 2026\nTo: a@x.example\nSubject: s\n\nbody\n", "sendmail", "-t")
	if r.code != 0 || !strings.Contains(r.env, "Ta@x.example\x00") || !strings.HasPrefix(r.msg, "To: a@x.example\nSubject: s\n") || strings.Contains(r.msg, "From bob") {
		t.Errorf("-t: exit %d %s, envelope %q, message %q", r.code, r.stderr, r.env, r.msg)
	}
}

func TestFixHeader(t *testing.T) {
	fields, _ := readAll(t, "To: Bob <bob@x.org>, carol\nCc: dave@y.org\nBcc: secret@z.org,\n  other@z.org\nSubject: hi\n\n", false)
	date := time.Date(2026, 11, 25, 1, 2, 3, 0, time.UTC)
	fx, err := FixHeader(fields, HeaderParams{UseHeaders: true, From: "me@host.example", FullName: "Me, Myself", Date: date, MessageID: "<id@host>"})
	if err != nil {
		t.Fatal(err)
	}
	wantR := []string{"bob@x.org", "carol", "dave@y.org", "secret@z.org", "other@z.org"}
	if !reflect.DeepEqual(fx.Rcpts, wantR) {
		t.Errorf("rcpts = %q, want %q", fx.Rcpts, wantR)
	}
	var b bytes.Buffer
	for _, f := range fx.Fields {
		b.Write(f.Raw)
	}
	want := "To: Bob <bob@x.org>, carol\nCc: dave@y.org\nSubject: hi\n" +
		"From: \"Me, Myself\" <me@host.example>\nDate: Wed, 25 Nov 2026 01:02:03 +0000\nMessage-ID: <id@host>\n"
	if b.String() != want {
		t.Errorf("header:\n%s\nwant:\n%s", b.String(), want)
	}
	// Present fields are kept as they are; without -t no recipients.
	fields, _ = readAll(t, "From: x@y\nDate: whenever\nMessage-Id: <a@b>\nTo: q@r\n\n", false)
	fx, _ = FixHeader(fields, HeaderParams{From: "me@h", Date: date, MessageID: "<new@h>"})
	if len(fx.Fields) != 4 || fx.Rcpts != nil {
		t.Errorf("fixed an already complete header: %q %q", fx.Fields, fx.Rcpts)
	}
	// Resent- fields take over with -t.
	fields, _ = readAll(t, "To: old@x\nResent-To: new@y\nResent-Bcc: hidden@z\n\n", false)
	fx, _ = FixHeader(fields, HeaderParams{UseHeaders: true, From: "me@h", Date: date, MessageID: "<n@h>"})
	if !reflect.DeepEqual(fx.Rcpts, []string{"new@y", "hidden@z"}) {
		t.Errorf("resent rcpts = %q", fx.Rcpts)
	}
}

// Recipients in domain literals arrive whole, from -t and from the
// arguments; two addresses without a comma between them are refused
// (exit 100, nothing queued), never glued into one.
func TestRecipientLists(t *testing.T) {
	r := inject(t, "To: bob@[IPv6:2001:db8::1]\nSubject: s\n\nbody\n", "sendmail", "-t", "carol@[IPv6:::1]")
	if r.code != 0 || r.env != "Falice@h.example\x00Tbob@[IPv6:2001:db8::1]\x00Tcarol@[IPv6:::1]\x00\x00" {
		t.Errorf("literals: exit %d %s, envelope %q", r.code, r.stderr, r.env)
	}
	for _, c := range []struct {
		msg  string
		args []string
	}{
		{"To: a@x.example b@y.example\nSubject: s\n\nbody\n", []string{"sendmail", "-t"}},
		{"Subject: s\n\nbody\n", []string{"sendmail", "a@x.example b@y.example"}},
	} {
		r := inject(t, c.msg, c.args...)
		if r.code != 100 || r.msg != "" || !strings.Contains(r.stderr, `"a@x.example b@y.example" is not one address`) {
			t.Errorf("%q: exit %d, stderr %q, queued %q", c.args, r.code, r.stderr, r.msg)
		}
	}
}

func TestQuoteNameCannotInjectHeaders(t *testing.T) {
	q := quoteName("evil\r\nBcc: victim@x")
	if strings.ContainsAny(q, "\r\n") {
		t.Errorf("quoteName let a line break through: %q", q)
	}
}

// FuzzHeader runs arbitrary input through the header reader and fix-ups:
// no panics, every field ends with a newline, and no Bcc survives.
func FuzzHeader(f *testing.F) {
	f.Add([]byte("To: a@b\nBcc: c@d\n\nbody\n"), true)
	f.Add([]byte("Subject: x\r\n\r\n.\r\nrest"), false)
	f.Add([]byte(": weird\n\tcont\nBCC:x\n"), true)
	f.Fuzz(func(t *testing.T, data []byte, useHeaders bool) {
		r := NewReader(bytes.NewReader(data), false)
		fields, _, err := r.ReadHeader()
		if err != nil {
			return
		}
		fx, err := FixHeader(fields, HeaderParams{UseHeaders: useHeaders, From: "a@b", MessageID: "<x@y>"})
		if err != nil {
			return
		}
		for _, fl := range fx.Fields {
			if len(fl.Raw) == 0 || fl.Raw[len(fl.Raw)-1] != '\n' {
				t.Fatalf("field without newline: %q", fl.Raw)
			}
			if fl.Is("bcc") {
				t.Fatalf("Bcc survived: %q", fl.Raw)
			}
		}
		var b bytes.Buffer
		r.WriteBody(&b)
	})
}
