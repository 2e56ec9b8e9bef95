package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"omail/lib/home"
	"omail/lib/outcome"
)

var when = time.Date(2026, 11, 5, 9, 4, 5, 0, time.UTC)

func TestMain(m *testing.M) {
	// The privilege tests run this binary as the delivery child.
	if len(os.Args) > 1 && os.Args[1] == "-local" {
		// TestChildNotDumpableFromExec holds it here, where the Go
		// runtime's start-up would be.
		pauseChild()
		os.Exit(RunChild(os.Args, home.Env(os.Environ()), os.Stdin, os.Stdout, os.Stderr))
	}
	// TestResidentChildNotInspectable runs it as a user's program.
	if len(os.Args) > 1 && os.Args[1] == "-grab-resident-fds" {
		os.Exit(grabResidentFds())
	}
	// TestChildNotDumpableFromExec and TestEnterChild run these.
	if len(os.Args) > 2 && os.Args[1] == "-grab-fd3" {
		os.Exit(grabFd3(os.Args[2]))
	}
	if len(os.Args) > 1 && os.Args[1] == "-enter-child" {
		os.Exit(showEnterChild())
	}
	os.Exit(m.Run())
}

// world is an OMAIL_HOME with a spool and a home for bob.
type world struct {
	t       *testing.T
	dir     string
	home    string // OMAIL_HOME
	spool   string
	bobHome string
	d       *Deliverer
	users   map[string]*User
}

func newWorld(t *testing.T) *world {
	t.Helper()
	old := geteuid
	geteuid = func() int { return 1000 } // an ordinary user, even when root
	t.Cleanup(func() { geteuid = old })
	dir := t.TempDir()
	w := &world{t: t, dir: dir, home: filepath.Join(dir, "omail"), spool: filepath.Join(dir, "spool"), bobHome: filepath.Join(dir, "bob")}
	for _, d := range []string{w.home + "/control", w.spool, w.bobHome} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	w.control("me", "test.example")
	w.control("mailspool", w.spool)
	w.d = New(home.Env{"OMAIL_HOME=" + w.home})
	w.d.Now = func() time.Time { return when }
	w.users = map[string]*User{
		"bob": {Name: "bob", UID: 1000, GID: 1000, Home: w.bobHome, Dash: "-"},
	}
	w.d.LookupUser = func(local string) (*User, error) {
		if u, ok := w.users[local]; ok {
			c := *u
			return &c, nil
		}
		name, ext, ok := strings.Cut(local, "-")
		if u, found := w.users[name]; ok && found {
			c := *u
			c.Ext = ext
			return &c, nil
		}
		return w.d.lookupSpool(local)
	}
	return w
}

func (w *world) control(name, value string) {
	w.t.Helper()
	if err := os.WriteFile(filepath.Join(w.home, "control", name), []byte(value+"\n"), 0o644); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) file(path, content string) {
	w.t.Helper()
	os.MkdirAll(filepath.Dir(path), 0o755)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) msg(content string) string {
	p := filepath.Join(w.dir, fmt.Sprintf("msg%d", time.Now().UnixNano()))
	w.file(p, content)
	return p
}

// queued is msg for a file named like a queue file (mess/ID): its
// deliveries have delivery ids, the same at every attempt (once.go).
func (w *world) queued(content string) string {
	p := filepath.Join(w.dir, fmt.Sprintf("1764032705.%d.42.1", time.Now().UnixNano()))
	w.file(p, content)
	return p
}

func (w *world) read(path string) string {
	w.t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		w.t.Fatal(err)
	}
	return string(b)
}

func (w *world) maildir(path string) {
	for _, s := range []string{"tmp", "new", "cur"} {
		os.MkdirAll(filepath.Join(path, s), 0o700)
	}
}

func (w *world) deliver(sender, rcpt, msg string) outcome.Result {
	return w.d.Deliver(context.Background(), w.msg(msg), sender, rcpt)
}

func want(t *testing.T, r outcome.Result, status outcome.Status, text string) {
	t.Helper()
	if r.Status != status || !strings.Contains(r.Text, text) {
		t.Fatalf("result %v %q, want %v containing %q", r.Status, r.Text, status, text)
	}
}

const hello = "Received: from x\nSubject: hi\n\nFrom me\nhello\n"

func TestDefaultMboxInSpool(t *testing.T) {
	w := newWorld(t)
	msg := w.queued(hello)
	r := w.d.Deliver(context.Background(), msg, "ann@example.org", "Bob@Test.Example")
	want(t, r, outcome.OK, "mbox "+w.spool+"/bob")
	got := w.read(filepath.Join(w.spool, "bob"))
	exp := "From ann@example.org Thu Nov  5 09:04:05 2026\nReturn-Path: <ann@example.org>\nDelivered-To: Bob@Test.Example\n" +
		"X-Omail-Delivery: " + DeliveryID(msg, "Bob@Test.Example") + "/0\n" +
		"Received: from x\nSubject: hi\n\n>From me\nhello\n\n"
	if got != exp {
		t.Fatalf("mbox %q, want %q", got, exp)
	}
	if len(r.Forward) != 0 || r.Prefix != nil {
		t.Errorf("forward %v prefix %v", r.Forward, r.Prefix)
	}
}

func TestUnknownUser(t *testing.T) {
	w := newWorld(t)
	want(t, w.deliver("a@b", "nobody@test.example", hello), outcome.Perm, "5.1.1")
}

func TestNotALocalDomain(t *testing.T) {
	w := newWorld(t)
	want(t, w.deliver("a@b", "bob@elsewhere.example", hello), outcome.Perm, "5.1.2")
}

func TestSpoolUser(t *testing.T) {
	w := newWorld(t)
	w.file(filepath.Join(w.spool, "kiosk1"), "")
	want(t, w.deliver("a@b", "kiosk1@test.example", hello), outcome.OK, "mbox")
	if !strings.Contains(w.read(filepath.Join(w.spool, "kiosk1")), "hello") {
		t.Fatal("not delivered")
	}
	want(t, w.deliver("a@b", "kiosk1-x@test.example", hello), outcome.Perm, "5.1.1")
	// A mailbox's dotlock is not a mailbox: mail to it would spoil the
	// lock's record and keep it from ever growing stale.
	w.file(filepath.Join(w.spool, "kiosk1.lock"), "1 host\n")
	want(t, w.deliver("a@b", "kiosk1.lock@test.example", hello), outcome.Perm, "5.1.1")
	if w.read(filepath.Join(w.spool, "kiosk1.lock")) != "1 host\n" {
		t.Fatal("mail appended to a dotlock")
	}
	// A spool file with a second name (a hard link to someone else's
	// file, made in a spool open to all) is no mailbox: deferred, and
	// nothing written to it.
	secret := filepath.Join(w.dir, "secret")
	w.file(secret, "x\n")
	if err := os.Link(secret, filepath.Join(w.spool, "grab")); err != nil {
		t.Fatal(err)
	}
	want(t, w.deliver("a@b", "grab@test.example", hello), outcome.Temp, "2 links")
	if w.read(secret) != "x\n" {
		t.Fatal("mail appended through a hard link")
	}
}

func TestBadLocalParts(t *testing.T) {
	w := newWorld(t)
	w.file(filepath.Join(w.spool, "x"), "")
	for _, rcpt := range []string{"../x@test.example", "a/b@test.example", ".x@test.example", "a\x01b@test.example", "a b@test.example", "@test.example"} {
		want(t, w.deliver("a@b", rcpt, hello), outcome.Perm, "5.1.3")
	}
	if w.read(filepath.Join(w.spool, "x")) != "" {
		t.Fatal("a bad local part reached a mailbox")
	}
}

func TestDotOmailAllKinds(t *testing.T) {
	w := newWorld(t)
	w.maildir(filepath.Join(w.bobHome, "Maildir"))
	w.file(filepath.Join(w.bobHome, ".omail"), "# bob's mail\n./Maildir/\n./mbox\n&carl@example.org\ndave\n|cat > prog.out; env > prog.env\n")
	r := w.deliver("ann@example.org", "bob@test.example", hello)
	want(t, r, outcome.OK, "maildir "+w.bobHome+"/Maildir;")
	if !reflect.DeepEqual(r.Forward, []string{"carl@example.org", "dave@test.example"}) {
		t.Errorf("forward %v", r.Forward)
	}
	if !reflect.DeepEqual(r.Prefix, []string{"Delivered-To: bob@test.example"}) {
		t.Errorf("prefix %v", r.Prefix)
	}
	ents, _ := os.ReadDir(filepath.Join(w.bobHome, "Maildir/new"))
	if len(ents) != 1 {
		t.Fatalf("maildir holds %d", len(ents))
	}
	if got := w.read(filepath.Join(w.bobHome, "Maildir/new", ents[0].Name())); got != "Return-Path: <ann@example.org>\nDelivered-To: bob@test.example\n"+hello {
		t.Errorf("maildir message %q", got)
	}
	if !strings.Contains(w.read(filepath.Join(w.bobHome, "mbox")), "\n>From me\n") {
		t.Error("mbox not written")
	}
	// The program gets the message as it is, and qmail's environment.
	if got := w.read(filepath.Join(w.bobHome, "prog.out")); got != hello {
		t.Errorf("program stdin %q", got)
	}
	env := w.read(filepath.Join(w.bobHome, "prog.env"))
	for _, v := range []string{"SENDER=ann@example.org", "NEWSENDER=ann@example.org", "RECIPIENT=bob@test.example",
		"USER=bob", "HOME=" + w.bobHome, "LOCAL=bob", "HOST=test.example", "HOST2=test", "HOST3=test\n", "HOST4=test\n", "EXT=\n",
		"DTLINE=Delivered-To: bob@test.example\n", "RPLINE=Return-Path: <ann@example.org>\n",
		"UFLINE=From ann@example.org Thu Nov  5 09:04:05 2026\n"} {
		if !strings.Contains(env, "\n"+v) && !strings.HasPrefix(env, v) {
			t.Errorf("program environment lacks %q:\n%s", v, env)
		}
	}
}

// HOST2..HOST4 are qmail-local's: the host without its last one to
// three dot-separated parts, the previous value kept when there is no
// further dot.
func TestProgramEnvHostParts(t *testing.T) {
	d := New(nil)
	for host, want := range map[string]string{
		"a.b.c.d.e":    "HOST2=a.b.c.d HOST3=a.b.c HOST4=a.b",
		"test.example": "HOST2=test HOST3=test HOST4=test",
		"localhost":    "HOST2=localhost HOST3=localhost HOST4=localhost",
		"a.b.c":        "HOST2=a.b HOST3=a HOST4=a",
	} {
		var got []string
		for _, v := range (&delivery{d: d, host: host}).programEnv(nil) {
			if strings.HasPrefix(v, "HOST") && !strings.HasPrefix(v, "HOST=") {
				got = append(got, v)
			}
		}
		if strings.Join(got, " ") != want {
			t.Errorf("%s: %q, want %q", host, got, want)
		}
	}
}

func TestExtensions(t *testing.T) {
	w := newWorld(t)
	w.file(filepath.Join(w.bobHome, ".omail-foo"), "|echo foo >> ext.log\n")
	w.file(filepath.Join(w.bobHome, ".omail-list-default"), "|echo \"list $DEFAULT $EXT $EXT2\" >> ext.log\n")
	want(t, w.deliver("a@b", "bob-foo@test.example", hello), outcome.OK, "program")
	want(t, w.deliver("a@b", "bob-list-x-y@test.example", hello), outcome.OK, "program")
	want(t, w.deliver("a@b", "bob-other@test.example", hello), outcome.Perm, "5.1.1")
	w.file(filepath.Join(w.bobHome, ".omail-default"), "|echo \"default $DEFAULT\" >> ext.log\n")
	want(t, w.deliver("a@b", "bob-other@test.example", hello), outcome.OK, "program")
	// '.' in an extension is ':' in the file name: no way up and out.
	w.file(filepath.Join(w.bobHome, ".omail-:"), "|echo dots >> ext.log\n")
	want(t, w.deliver("a@b", "bob-.@test.example", hello), outcome.OK, "program")
	if got := w.read(filepath.Join(w.bobHome, "ext.log")); got != "foo\nlist x-y list-x-y x-y\ndefault other\ndots\n" {
		t.Errorf("ext.log %q", got)
	}
	// Without an extension and without .omail: the default, the spool.
	want(t, w.deliver("a@b", "bob@test.example", hello), outcome.OK, "mbox "+w.spool+"/bob")
}

// DEFAULT is the extension's part as it is, dots kept, as qmail-local
// sets it (only the file name has ':' for '.'): ezmlm-style
// "subscribe-joe=example.org" reaches the program whole.
func TestDefaultKeepsDots(t *testing.T) {
	w := newWorld(t)
	w.file(filepath.Join(w.bobHome, ".omail-list-default"), "|printf '%s|%s\\n' \"$DEFAULT\" \"$EXT\" > got\n")
	want(t, w.deliver("a@b", "bob-list-subscribe-joe=example.org@test.example", hello), outcome.OK, "program")
	if got := w.read(filepath.Join(w.bobHome, "got")); got != "subscribe-joe=example.org|list-subscribe-joe=example.org\n" {
		t.Errorf("program saw %q", got)
	}
	w.file(filepath.Join(w.bobHome, ".omail-default"), "|printf '%s\\n' \"$DEFAULT\" > got\n")
	want(t, w.deliver("a@b", "bob-a.b@test.example", hello), outcome.OK, "program")
	if got := w.read(filepath.Join(w.bobHome, "got")); got != "a.b\n" {
		t.Errorf(".omail-default: program saw %q", got)
	}
}

func TestAddressReachesProgramOnlyThroughEnvironment(t *testing.T) {
	w := newWorld(t)
	w.file(filepath.Join(w.bobHome, ".omail-default"), "|printf '%s\\n' \"$EXT\" \"$SENDER\" > got\n")
	ext := "$(touch${IFS}pwned)`touch${IFS}pwned2`;touch${IFS}pwned3"
	sender := "x$(touch pwned4)'\"@example.org"
	want(t, w.deliver(sender, "bob-"+ext+"@test.example", hello), outcome.OK, "program")
	if got := w.read(filepath.Join(w.bobHome, "got")); got != aliasesLower(ext)+"\n"+sender+"\n" {
		t.Errorf("program saw %q", got)
	}
	for _, p := range []string{"pwned", "pwned2", "pwned3", "pwned4"} {
		if _, err := os.Stat(filepath.Join(w.bobHome, p)); err == nil {
			t.Errorf("the shell ran part of an address: %s exists", p)
		}
	}
}

// A program that exits, leaving a child in the background that holds
// its output open, is delivered to by its exit status: neither a
// deferral nor a second run.
func TestProgramLeavesBackgroundChild(t *testing.T) {
	w := newWorld(t)
	old := programWaitDelay
	programWaitDelay = time.Millisecond
	t.Cleanup(func() { programWaitDelay = old })
	for _, c := range []struct {
		code   string
		status outcome.Status
		text   string
	}{
		{"0", outcome.OK, "program: started"},
		{"99", outcome.OK, "program: started"},
		{"100", outcome.Perm, "5.2.0 program said: started"},
		{"111", outcome.Temp, "4.3.0 program exit 111: started"},
	} {
		// The background sleep holds stdout and stderr; it is killed
		// with its process group, whose id the program leaves.
		pgid := filepath.Join(w.bobHome, "pgid")
		w.file(filepath.Join(w.bobHome, ".omail"), "|echo $$ > pgid; echo ran >> runs.log; echo started; sleep 1000 & exit "+c.code+"\n")
		want(t, w.deliver("a@b", "bob@test.example", hello), c.status, c.text)
		if n, err := strconv.Atoi(strings.TrimSpace(w.read(pgid))); err == nil && n > 1 {
			syscall.Kill(-n, syscall.SIGKILL)
		}
		if got := w.read(filepath.Join(w.bobHome, "runs.log")); got != "ran\n" {
			t.Errorf("exit %s: runs.log %q", c.code, got)
		}
		os.Remove(filepath.Join(w.bobHome, "runs.log"))
	}
}

func aliasesLower(s string) string { return strings.ToLower(s) }

func TestProgramExitCodes(t *testing.T) {
	w := newWorld(t)
	cases := []struct {
		prog   string
		status outcome.Status
		text   string
	}{
		{"exit 0", outcome.OK, "program"},
		{"echo fine; exit 99", outcome.OK, "fine"},
		{"echo no such list; exit 100", outcome.Perm, "no such list"},
		{"echo busy; exit 111", outcome.Temp, "busy"},
		{"exit 1", outcome.Temp, "exit 1"},
		{"kill -9 $$", outcome.Temp, "killed"},
		// qmail-command(8)'s other hard errors bounce too; their
		// neighbours do not.
		{"echo usage; exit 64", outcome.Perm, "program exit 64: usage"},
		{"exit 65", outcome.Perm, "program exit 65: no output"},
		{"exit 70", outcome.Perm, "exit 70"},
		{"exit 76", outcome.Perm, "exit 76"},
		{"exit 77", outcome.Perm, "exit 77"},
		{"exit 78", outcome.Perm, "exit 78"},
		{"exit 112", outcome.Perm, "exit 112"},
		{"exit 75", outcome.Temp, "exit 75"},
		{"exit 111", outcome.Temp, "exit 111"},
		{"exit 113", outcome.Temp, "exit 113"},
	}
	for _, c := range cases {
		w.file(filepath.Join(w.bobHome, ".omail"), "|"+c.prog+"\n|echo after >> after.log\n")
		want(t, w.deliver("a@b", "bob@test.example", hello), c.status, c.text)
	}
	// Only exit 0 lets the second line run; 99 stops the rest.
	if got := w.read(filepath.Join(w.bobHome, "after.log")); got != "after\n" {
		t.Errorf("after.log %q", got)
	}
}

func TestDefaultDeliveryMaildir(t *testing.T) {
	w := newWorld(t)
	w.control("defaultdelivery", "./Maildir/")
	w.maildir(filepath.Join(w.bobHome, "Maildir"))
	want(t, w.deliver("a@b", "bob@test.example", hello), outcome.OK, "maildir")
	// An empty .omail means the default too, as in qmail; one of
	// comments only discards the message.
	w.file(filepath.Join(w.bobHome, ".omail"), "")
	want(t, w.deliver("a@b", "bob@test.example", hello), outcome.OK, "maildir")
	w.file(filepath.Join(w.bobHome, ".omail"), "# nothing\n")
	want(t, w.deliver("a@b", "bob@test.example", hello), outcome.OK, "discarded")
	ents, _ := os.ReadDir(filepath.Join(w.bobHome, "Maildir/new"))
	if len(ents) != 2 {
		t.Fatalf("%d messages", len(ents))
	}
	// A missing Maildir is a temporary failure, not a lost message.
	os.Remove(filepath.Join(w.bobHome, ".omail"))
	os.RemoveAll(filepath.Join(w.bobHome, "Maildir"))
	want(t, w.deliver("a@b", "bob@test.example", hello), outcome.Temp, "4.3.0")
}

func TestUnsafeFiles(t *testing.T) {
	w := newWorld(t)
	w.file(filepath.Join(w.bobHome, ".omail"), "./mbox\n")
	os.Chmod(filepath.Join(w.bobHome, ".omail"), 0o666)
	want(t, w.deliver("a@b", "bob@test.example", hello), outcome.Temp, "writable by others")
	os.Chmod(filepath.Join(w.bobHome, ".omail"), 0o644)
	os.Chmod(w.bobHome, 0o777)
	want(t, w.deliver("a@b", "bob@test.example", hello), outcome.Temp, "writable by others")
	os.Chmod(w.bobHome, 0o755)
	w.file(filepath.Join(w.bobHome, ".omail"), "<bad>\n")
	want(t, w.deliver("a@b", "bob@test.example", hello), outcome.Temp, "line 1")
}

// An instruction file that is not a regular file (a FIFO, which would
// block the open until a writer came, a directory) is a temporary
// failure naming it, without waiting.
func TestDotOmailNotRegular(t *testing.T) {
	w := newWorld(t)
	dot := filepath.Join(w.bobHome, ".omail")
	if err := syscall.Mkfifo(dot, 0o644); err != nil {
		t.Fatal(err)
	}
	want(t, w.deliver("a@b", "bob@test.example", hello), outcome.Temp, "4.7.0 "+dot+" is not a regular file")
	os.Remove(dot)
	dflt := filepath.Join(w.bobHome, ".omail-default")
	if err := os.Mkdir(dflt, 0o755); err != nil {
		t.Fatal(err)
	}
	want(t, w.deliver("a@b", "bob-x@test.example", hello), outcome.Temp, "4.7.0 "+dflt+" is not a regular file")
}

func TestLoops(t *testing.T) {
	w := newWorld(t)
	want(t, w.deliver("a@b", "bob@test.example", "Delivered-To: BOB@test.example\nSubject: x\n\nbody\n"), outcome.Perm, "5.4.6")
	// The same line in the body is no loop.
	want(t, w.deliver("a@b", "bob@test.example", "Subject: x\n\nDelivered-To: bob@test.example\n"), outcome.OK, "mbox")
	many := strings.Repeat("Received: x\n", 60) + strings.Repeat("Delivered-To: other@x\n", 41) + "\nbody\n"
	want(t, w.deliver("a@b", "bob@test.example", many), outcome.Perm, "5.4.6")
	fine := strings.Repeat("Received: x\n", 100) + "\nbody\n"
	want(t, w.deliver("a@b", "bob@test.example", fine), outcome.OK, "mbox")
}

func TestAliases(t *testing.T) {
	w := newWorld(t)
	w.maildir(filepath.Join(w.dir, "archive"))
	w.control("aliases", `postmaster: root
root: bob, admin@example.org
bob: \bob, bob@elsewhere.example
archive: `+w.dir+`/archive/, `+w.dir+`/archive.mbox, "|cat > `+w.dir+`/alias.out"
Loop: loop
`)
	r := w.deliver("a@b", "postmaster@test.example", hello)
	want(t, r, outcome.OK, "forward root@test.example")
	if !reflect.DeepEqual(r.Forward, []string{"root@test.example"}) || !reflect.DeepEqual(r.Prefix, []string{"Delivered-To: postmaster@test.example"}) {
		t.Errorf("forward %v prefix %v", r.Forward, r.Prefix)
	}
	r = w.deliver("a@b", "bob@test.example", hello)
	// One account per target: the \bob delivery's own "delivered: " is
	// not repeated (walkAlias treats every way of delivering alike).
	if r.Status != outcome.OK || r.Text != "delivered: mbox "+w.spool+"/bob; forward bob@elsewhere.example" {
		t.Errorf("bob: %v %q", r.Status, r.Text)
	}
	if !reflect.DeepEqual(r.Forward, []string{"bob@elsewhere.example"}) {
		t.Errorf("forward %v", r.Forward)
	}
	if !strings.Contains(w.read(filepath.Join(w.spool, "bob")), "Delivered-To: bob@test.example\n") {
		t.Error("\\bob not delivered to bob's mailbox")
	}
	want(t, w.deliver("a@b", "archive@test.example", hello), outcome.OK, "maildir")
	if w.read(filepath.Join(w.dir, "alias.out")) != hello || !strings.Contains(w.read(filepath.Join(w.dir, "archive.mbox")), "hello") {
		t.Error("alias files not delivered")
	}
	// Program and file targets run after the \user targets, and a
	// program's exit 99 skips only the program and file targets after it.
	w.control("aliases", `stop: "|exit 99", `+w.dir+`/after.mbox, \bob, stopped@example.org
Loop: loop
`)
	r = w.deliver("a@b", "stop@test.example", hello)
	if r.Status != outcome.OK || r.Text != "delivered: mbox "+w.spool+"/bob; program; forward stopped@example.org" {
		t.Errorf("stop: %v %q", r.Status, r.Text)
	}
	if _, err := os.Stat(filepath.Join(w.dir, "after.mbox")); err == nil {
		t.Error("a target after exit 99 was delivered")
	}
	if n := strings.Count(w.read(filepath.Join(w.spool, "bob")), "\nhello\n"); n != 2 {
		t.Errorf("bob's mailbox holds %d messages, want 2", n)
	}
	// A forwarding loop ends at the Delivered-To line.
	r = w.deliver("a@b", "loop@test.example", hello)
	want(t, r, outcome.OK, "forward loop@test.example")
	want(t, w.deliver("a@b", "loop@test.example", r.Prefix[0]+"\n"+hello), outcome.Perm, "5.4.6")
	// A UTF-8 name in the file in NFC matches the address sent in NFD.
	w.control("aliases", "\u00fcn\u00efcode: \\bob\n")
	r = w.deliver("a@b", "u\u0308ni\u0308code@test.example", hello)
	want(t, r, outcome.OK, "mbox "+w.spool+"/bob")
	// A broken aliases file defers everything rather than guess.
	w.control("aliases", "broken\n")
	want(t, w.deliver("a@b", "bob@test.example", hello), outcome.Temp, "aliases")
}

// An alias reached through a virtual domain: its \name target is the
// local user name itself, with no second prefix ("\bob" is bob, not
// v-bob; "\v-bob" is v-bob), and its copy carries name@me, the address
// of that user (bob@virt.example would be v-bob).
func TestBackslashUserInVirtualDomain(t *testing.T) {
	w := newWorld(t)
	w.users["v-bob"] = &User{Name: "vbob", UID: 1000, GID: 1000}
	w.control("virtualdomains", "virt.example:v")
	w.control("aliases", "v-info: \\bob\nv-sales: \\v-bob\n")
	w.file(filepath.Join(w.bobHome, ".omail"), "./mbox\n|printf '%s|%s|%s' \"$LOCAL\" \"$RECIPIENT\" \"$DTLINE\" > got\n")
	r := w.deliver("a@b", "info@virt.example", hello)
	want(t, r, outcome.OK, "mbox "+w.bobHome+"/mbox")
	if got := w.read(filepath.Join(w.bobHome, "got")); got != "bob|bob@test.example|Delivered-To: bob@test.example\n" {
		t.Errorf("program saw %q", got)
	}
	if !strings.Contains(w.read(filepath.Join(w.bobHome, "mbox")), "Delivered-To: bob@test.example\n") {
		t.Error("no Delivered-To: bob@test.example in bob's mbox")
	}
	want(t, w.deliver("a@b", "sales@virt.example", hello), outcome.OK, "mbox "+w.spool+"/vbob")
	if !strings.Contains(w.read(filepath.Join(w.spool, "vbob")), "Delivered-To: v-bob@test.example\n") {
		t.Error("no Delivered-To: v-bob@test.example in vbob's mbox")
	}
}

func TestVirtualDomainsAndAssign(t *testing.T) {
	w := newWorld(t)
	w.d.LookupUser = w.d.lookupUser // the real one: users/assign first
	alice := filepath.Join(w.dir, "alice")
	os.MkdirAll(alice, 0o755)
	w.file(filepath.Join(w.home, "users/assign"), fmt.Sprintf("=alice:alice:%d:%d:%s:::\n+v-:vuser:%d:%d:%s:-::\n.\n=late:x:1:1:/x:::\n",
		os.Getuid(), os.Getgid(), alice, os.Getuid(), os.Getgid(), w.bobHome))
	w.control("virtualdomains", "virt.example:v")
	w.file(filepath.Join(w.bobHome, ".omail-default"), "|echo \"$LOCAL $EXT $DEFAULT $RECIPIENT\" >> v.log\n")
	want(t, w.deliver("a@b", "Sales@Virt.Example", hello), outcome.OK, "program")
	if got := w.read(filepath.Join(w.bobHome, "v.log")); got != "v-sales sales sales v-sales@virt.example\n" {
		t.Errorf("v.log %q", got)
	}
	w.file(filepath.Join(alice, ".omail"), "./box\n")
	want(t, w.deliver("a@b", "alice@test.example", hello), outcome.OK, "mbox "+alice+"/box")
	// After the "." line nothing counts.
	want(t, w.deliver("a@b", "late@test.example", hello), outcome.Perm, "5.1.1")

	// A UTF-8 local part is looked up in NFC, whichever form the map
	// and the client wrote it in (here the map in NFD, the address NFC).
	w.file(filepath.Join(w.home, "users/assign"), fmt.Sprintf("=u\u0308ni\u0308code:alice:%d:%d:%s:::\n.\n", os.Getuid(), os.Getgid(), alice))
	want(t, w.deliver("a@b", "\u00fcn\u00efcode@test.example", hello), outcome.OK, "mbox "+alice+"/box")

	// The same map as a cdb: key "=local" or "+prefix", value the rest.
	u, err := parseAssign(fmt.Sprintf("alice:%d:%d:%s:::", os.Getuid(), os.Getgid(), alice), "")
	if err != nil || u.Name != "alice" || u.Home != alice || u.Ext != "" {
		t.Fatalf("parseAssign: %+v %v", u, err)
	}
}

func TestAssignCDB(t *testing.T) {
	w := newWorld(t)
	os.MkdirAll(filepath.Join(w.home, "users"), 0o755)
	writeCDB(t, filepath.Join(w.home, AssignCDB), map[string]string{
		"=alice": "alice:1001:1002:/home/alice:::",
		"+list-": "lists:1003:1003:/home/lists:-:x-:",
	})
	u, err := w.d.lookupAssign("alice")
	if err != nil || u == nil || u.UID != 1001 || u.GID != 1002 || u.Home != "/home/alice" {
		t.Fatalf("alice: %+v %v", u, err)
	}
	u, err = w.d.lookupAssign("list-foo-bar")
	if err != nil || u == nil || u.Name != "lists" || u.Ext != "x-foo-bar" || u.Dash != "-" {
		t.Fatalf("list-foo-bar: %+v %v", u, err)
	}
	if u, err := w.d.lookupAssign("bob"); u != nil || err != nil {
		t.Fatalf("bob: %+v %v", u, err)
	}
}

func TestPasswd(t *testing.T) {
	u, err := lookupPasswd("root")
	if err != nil || u == nil || u.UID != 0 || u.Ext != "" {
		t.Fatalf("root: %+v %v", u, err)
	}
	u, err = lookupPasswd("root-some-ext")
	if err != nil || u == nil || u.Name != "root" || u.Ext != "some-ext" {
		t.Fatalf("root-some-ext: %+v %v", u, err)
	}
	if u, err := lookupPasswd("no-such-user-here"); u != nil || err != nil {
		t.Fatalf("unknown: %+v %v", u, err)
	}
}

// As qmail-getpw: the whole local part, then the part before each '-'
// from the right, so a dashed account name takes its extensions.
func TestPasswdDashedAccounts(t *testing.T) {
	old := lookupAccount
	t.Cleanup(func() { lookupAccount = old })
	accounts := map[string]bool{"john": true, "john-doe": true, "www-data": true}
	var tried []string
	lookupAccount = func(name string) (*user.User, error) {
		tried = append(tried, name)
		if name == "broken" {
			return nil, errors.New("passwd unreadable")
		}
		if !accounts[name] {
			return nil, user.UnknownUserError(name)
		}
		return &user.User{Username: name, Uid: "1001", Gid: "1001", HomeDir: "/nonexistent"}, nil
	}
	for _, c := range []struct{ local, name, ext string }{
		{"www-data", "www-data", ""},
		{"www-data-x", "www-data", "x"},
		{"john-doe-list", "john-doe", "list"},
		{"john-doe-list-x", "john-doe", "list-x"},
		{"john-smith-list", "john", "smith-list"},
		{"john-", "john", ""},
		{"nobody-here-at-all", "", ""},
		{"-john", "", ""},
	} {
		u, err := lookupPasswd(c.local)
		if err != nil {
			t.Errorf("%s: %v", c.local, err)
			continue
		}
		if c.name == "" {
			if u != nil {
				t.Errorf("%s: %+v, want nobody", c.local, u)
			}
			continue
		}
		if u == nil || u.Name != c.name || u.Ext != c.ext || u.Home != "" {
			t.Errorf("%s: %+v, want account %s, extension %q, no home", c.local, u, c.name, c.ext)
		}
	}
	tried = nil
	lookupPasswd("a-b-c")
	if strings.Join(tried, " ") != "a-b-c a-b a" {
		t.Errorf("tried %q, want the whole name, then from the right", tried)
	}
	// A failing database is an error, not "nobody".
	if u, err := lookupPasswd("broken-x"); err == nil {
		t.Errorf("broken-x: %+v, no error", u)
	}
}

// The rebuild command docs/local-delivery.md gives makes a cdb we read.
func TestAssignCDBFromDocumentedCommand(t *testing.T) {
	w := newWorld(t)
	users := filepath.Join(w.home, "users")
	w.file(filepath.Join(users, "assign"), "=alice:alice:1001:1002:/home/alice:::\n+list-:lists:1003:1003:/home/lists:-:x-:\n.\n=late:x:1:1:/x:::\n")
	cmd := exec.Command("sh", "-c", `sed -n '/^\.$/q; s/^\([=+][^:]*\):\(.*\)$/\1 \2/p' assign | cdb -c -m assign.cdb`)
	cmd.Dir = users
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	os.Remove(filepath.Join(users, "assign")) // the cdb alone must do
	if u, err := w.d.lookupAssign("alice"); err != nil || u == nil || u.UID != 1001 {
		t.Fatalf("alice: %+v %v", u, err)
	}
	if u, err := w.d.lookupAssign("list-a"); err != nil || u == nil || u.Ext != "x-a" {
		t.Fatalf("list-a: %+v %v", u, err)
	}
	if u, err := w.d.lookupAssign("late"); err != nil || u != nil {
		t.Fatalf("late: %+v %v", u, err)
	}
}

func TestScanHeader(t *testing.T) {
	msg := "Received: a\nDELIVERED-TO:  Bob@X \nX: y\n" + strings.Repeat("Z", 10000) + "Delivered-To: bob@x\n\nDelivered-To: bob@x\nReceived: b\n"
	hops, seen, err := scanHeader(strings.NewReader(msg), "bob@x")
	if err != nil || hops != 2 || !seen {
		t.Fatalf("hops %d seen %v err %v", hops, seen, err)
	}
	if _, seen, _ := scanHeader(strings.NewReader("Subject: x\n\nDelivered-To: bob@x\n"), "bob@x"); seen {
		t.Fatal("a body line counted")
	}
}

// FuzzScanHeader: against a plain reading of the header, line by line.
func FuzzScanHeader(f *testing.F) {
	f.Add("Received: a\nDelivered-To: bob@x\n\nbody\n", "bob@x")
	f.Fuzz(func(t *testing.T, msg, rcpt string) {
		hops, seen, err := scanHeader(strings.NewReader(msg), rcpt)
		if err != nil {
			t.Fatal(err)
		}
		wantHops, wantSeen := 0, false
		for _, l := range strings.SplitAfter(msg, "\n") {
			if l == "" || l == "\n" || l == "\r\n" {
				break
			}
			lower := strings.ToLower(l)
			if strings.HasPrefix(lower, "received:") {
				wantHops++
			} else if strings.HasPrefix(lower, "delivered-to:") {
				wantHops++
				if strings.EqualFold(strings.TrimSpace(l[len("delivered-to:"):]), rcpt) {
					wantSeen = true
				}
			}
		}
		if hops != wantHops || seen != wantSeen {
			t.Fatalf("%q: hops %d seen %v, want %d %v", msg, hops, seen, wantHops, wantSeen)
		}
	})
}

// RunChild run by hand (no OMAIL_LOCAL_STEP) resolves and delivers as
// the calling user, and reports in the documented format.
func TestRunChildByHand(t *testing.T) {
	w := newWorld(t)
	w.file(filepath.Join(w.spool, "kiosk7"), "")
	msg := w.msg(hello)
	env := home.Env{"OMAIL_HOME=" + w.home}
	// A file that is not a queue file says nothing about which message
	// it holds: every run delivers (once.go).
	for _, args := range [][]string{
		{"omail-deliver", "-local", "a@b", "kiosk7@test.example", msg},
		{"-local", "a@b", "kiosk7@test.example", msg},
		{"a@b", "kiosk7@test.example", msg},
	} {
		var out, errs strings.Builder
		if code := RunChild(args, env, strings.NewReader("not a file"), &out, &errs); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errs.String())
		}
		r, err := outcome.ParseReport([]byte(out.String()))
		if err != nil {
			t.Fatal(err)
		}
		want(t, r, outcome.OK, "mbox "+w.spool+"/kiosk7")
	}
	if got := strings.Count(w.read(filepath.Join(w.spool, "kiosk7")), "\nhello\n"); got != 3 {
		t.Fatalf("%d deliveries", got)
	}
	var out, errs strings.Builder
	if code := RunChild([]string{"omail-deliver", "-local", "a@b"}, env, nil, &out, &errs); code != 100 {
		t.Fatalf("bad usage: exit %d", code)
	}
}

func TestAddressesFromOutsideChecked(t *testing.T) {
	w := newWorld(t)
	want(t, w.deliver("a@b", `\bob@test.example`, hello), outcome.Perm, "5.1.3")
	want(t, w.deliver("a@b", "bob@test.example\nX: y", hello), outcome.Perm, "5.1.3")
	want(t, w.deliver("a\r@b", "bob@test.example", hello), outcome.Perm, "5.1.7")
	want(t, w.d.DeliverAs(context.Background(), "/nonexistent", nil, w.msg(hello), "a@b", `\bob@test.example`), outcome.Perm, "5.1.3")
}

// aliases.cdb, built with the command docs/local-delivery.md gives, is
// used instead of the text file.
func TestAliasesCDB(t *testing.T) {
	w := newWorld(t)
	ctl := filepath.Join(w.home, "control")
	w.control("aliases", "# comment\nPostMaster: root\n\"staff\" : bob,\n\n  # inside\n    carl@example.org\nlist: \"|echo a, b\"\n")
	cmd := exec.Command("sh", "-c", aliasesCDBCommand)
	cmd.Dir = ctl
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	w.control("aliases", "broken, and not read\n")
	r := w.deliver("a@b", "postmaster@test.example", hello)
	want(t, r, outcome.OK, "forward root@test.example")
	r = w.deliver("a@b", "staff@test.example", hello)
	if !reflect.DeepEqual(r.Forward, []string{"bob@test.example", "carl@example.org"}) {
		t.Fatalf("staff: %+v", r)
	}
	want(t, w.deliver("a@b", "list@test.example", hello), outcome.OK, "program: a, b")
	want(t, w.deliver("a@b", "bob@test.example", hello), outcome.OK, "mbox")
}

// aliasesCDBCommand is the rebuild command of docs/local-delivery.md.
const aliasesCDBCommand = `awk '
/^[ \t]*(#|$)/ { next }
/^[ \t]/ { sub(/^[ \t]+/, ""); e = e " " $0; next }
{ if (e != "") out(e); e = $0 }
END { if (e != "") out(e) }
function out(s, k) { k = s; sub(/:.*/, "", k); gsub(/["\t ]/, "", k); print tolower(k), s }
' aliases | cdb -c -m aliases.cdb`

// What docs/local-delivery.md says a program's report holds: the first
// 1000 bytes of its output, one line, behind the prefix, the whole text
// cut at outcome.MaxText; and what an alias's program gets as USER and
// HOME.
func TestProgramOutputAndAliasEnv(t *testing.T) {
	w := newWorld(t)
	w.file(filepath.Join(w.bobHome, ".omail"), "|printf 'x%.0s' $(seq 1200); exit 100\n")
	r := w.deliver("a@b", "bob@test.example", hello)
	prefix := "5.2.0 program said: "
	if wantText := prefix + strings.Repeat("x", outcome.MaxText-len(prefix)-len("...")) + "..."; r.Status != outcome.Perm || r.Text != wantText {
		t.Errorf("result %v %q, want %q", r.Status, r.Text, wantText)
	}
	env := filepath.Join(w.dir, "alias.env")
	w.control("aliases", `list: "|env | grep -E '^(USER|HOME)=' | sort > `+env+`"`)
	want(t, w.deliver("a@b", "list@test.example", hello), outcome.OK, "program")
	if got := w.read(env); got != "HOME=/\nUSER=\n" {
		t.Errorf("alias program environment %q", got)
	}
}
