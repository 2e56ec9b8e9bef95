package local

import (
	"context"
	"fmt"
	"golang.org/x/sys/unix"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"omail/lib/outcome"
	"omail/lib/privdrop"
)

const (
	bobUID, carlUID, noAccountUID = 4321, 4322, 4323
	mailGID                       = 4242
)

// copyExe puts this test binary where the unprivileged children can run it.
func copyExe(t *testing.T, dir string) string {
	t.Helper()
	src, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	exe := filepath.Join(dir, "omail-deliver")
	dst, err := os.OpenFile(exe, os.O_WRONLY|os.O_CREATE, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return exe
}

func owner(t *testing.T, path string) (uid, gid int) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return int(st.Uid), int(st.Gid)
}

// Not root, DeliverAs delivers in this process, as this user: it never
// runs the child (the program given does not even exist).
func TestDeliverAsOrdinaryUser(t *testing.T) {
	w := newWorld(t)
	r := w.d.DeliverAs(context.Background(), "/nonexistent/omail-deliver", nil, w.msg(hello), "a@b", "bob@test.example")
	want(t, r, outcome.OK, "mbox "+w.spool+"/bob")
}

// As root, deliveries to users run in children with the users' ids; root
// never writes an ordinary user's files itself.
func TestDeliverAsRoot(t *testing.T) {
	if !asRoot(t) {
		return
	}
	rw := newRootWorld(t)
	d, exe, msg, ctx := rw.d, rw.exe, rw.msg, context.Background()
	dir, omailHome, spool, bobHome, write := rw.dir, rw.home, rw.spool, rw.bobHome, rw.write
	write(bobHome+"/.omail", "./mbox\n|id -u > uid.out; id -G > groups.out; cat > prog.out\n", bobUID)

	r := d.DeliverAs(ctx, exe, nil, msg, "ann@example.org", "bob@test.example")
	want(t, r, outcome.OK, "mbox "+bobHome+"/mbox")
	if uid, _ := owner(t, bobHome+"/mbox"); uid != bobUID {
		t.Errorf("bob's mbox owned by %d", uid)
	}
	if got, _ := os.ReadFile(bobHome + "/uid.out"); string(got) != "4321\n" {
		t.Errorf("program ran as uid %q", got)
	}
	if got, _ := os.ReadFile(bobHome + "/groups.out"); strings.Contains(string(got), "4242") {
		t.Errorf("program groups %q hold the spool's group", got)
	}
	if got, _ := os.ReadFile(bobHome + "/prog.out"); string(got) != hello {
		t.Errorf("program read %q", got)
	}

	// carl has no home: the spool mbox, which carl may not create in the
	// root:mail spool: made for carl, carl's, before the child delivers.
	r = d.DeliverAs(ctx, exe, nil, msg, "ann@example.org", "carl@test.example")
	want(t, r, outcome.OK, "mbox "+spool+"/carl")
	if uid, _ := owner(t, spool+"/carl"); uid != carlUID {
		t.Errorf("carl's mbox owned by %d", uid)
	}
	if b, _ := os.ReadFile(spool + "/carl"); !strings.Contains(string(b), "Delivered-To: carl@test.example\n") {
		t.Errorf("carl's mbox: %q", b)
	}

	// uid 0 but not root: refused. root itself: delivered, as root.
	want(t, d.DeliverAs(ctx, exe, nil, msg, "a@b", "toor@test.example"), outcome.Temp, "not root")
	want(t, d.DeliverAs(ctx, exe, nil, msg, "a@b", "root@test.example"), outcome.OK, "mbox "+spool+"/root")

	// Deliver (in this process) as root refuses an ordinary user.
	want(t, d.Deliver(ctx, msg, "a@b", "bob@test.example"), outcome.Temp, "DeliverAs")

	// Alias files run as the owner of control/aliases, never as root.
	alias := aliasAccount(t)
	archive := filepath.Join(dir, "archive")
	os.MkdirAll(archive, 0o755)
	os.Chown(archive, alias.UID, alias.GID)
	write(omailHome+"/control/aliases", "arch: "+archive+"/box, |id -u > "+archive+"/uid, \\carl, x@example.org\n", 0)
	want(t, d.DeliverAs(ctx, exe, nil, msg, "a@b", "arch@test.example"), outcome.Temp, "owned by root")
	os.Chown(omailHome+"/control/aliases", alias.UID, alias.GID)
	r = d.DeliverAs(ctx, exe, nil, msg, "a@b", "arch@test.example")
	want(t, r, outcome.OK, "mbox "+archive+"/box")
	// The same account as in this process (TestAliases): one per target.
	if r.Text != "delivered: mbox "+spool+"/carl; mbox "+archive+"/box; program; forward x@example.org" {
		t.Errorf("alias text %q", r.Text)
	}
	if len(r.Forward) != 1 || r.Forward[0] != "x@example.org" {
		t.Errorf("forward %v", r.Forward)
	}
	if uid, _ := owner(t, archive+"/box"); uid != alias.UID {
		t.Errorf("alias mbox owned by %d", uid)
	}
	if got, _ := os.ReadFile(archive + "/uid"); string(got) != strconv.Itoa(alias.UID)+"\n" {
		t.Errorf("alias program ran as %q", got)
	}
	if b, _ := os.ReadFile(spool + "/carl"); strings.Count(string(b), "\nhello\n") != 2 {
		t.Errorf("\\carl not delivered to carl: %q", b)
	}
}

// aliasAccount is the account the tests give control/aliases to: one
// the system's databases know (an alias's programs take its ids).
func aliasAccount(t *testing.T) privdrop.IDs {
	t.Helper()
	ids, err := privdrop.Lookup("nobody")
	if err != nil {
		t.Fatalf("the account nobody: %v", err)
	}
	return ids
}

// As root, an alias's programs and files run with the account of
// control/aliases's owner: its uid, primary gid and groups, never the
// file's group (`chown alias control/aliases` leaves that root's). A
// uid that no account has is refused.
func TestAliasFilesTakeOwnersAccount(t *testing.T) {
	if !asRoot(t) {
		return
	}
	rw := newRootWorld(t)
	alias := aliasAccount(t)
	out := filepath.Join(rw.dir, "out")
	os.MkdirAll(out, 0o755)
	os.Chown(out, alias.UID, alias.GID)
	aliasesFile := rw.home + "/control/aliases"
	rw.write(aliasesFile, "prog: |id -u > "+out+"/uid; id -g > "+out+"/gid; id -G > "+out+"/groups\n", 0)
	os.Chown(aliasesFile, alias.UID, 0) // the file's group stays root's
	r := rw.d.DeliverAs(context.Background(), rw.exe, nil, rw.msg, "a@b", "prog@test.example")
	want(t, r, outcome.OK, "program")
	read := func(name string) string {
		b, err := os.ReadFile(out + "/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	if got := read("uid"); got != strconv.Itoa(alias.UID) {
		t.Errorf("alias program ran as uid %s, want %d", got, alias.UID)
	}
	if got := read("gid"); got != strconv.Itoa(alias.GID) {
		t.Errorf("alias program ran with gid %s, want %d (the owner's, not the file's)", got, alias.GID)
	}
	var groups []int
	for _, g := range strings.Fields(read("groups")) {
		n, _ := strconv.Atoi(g)
		groups = append(groups, n)
	}
	wantGroups := append([]int{alias.GID}, alias.Groups...)
	slices.Sort(groups)
	slices.Sort(wantGroups)
	groups, wantGroups = slices.Compact(groups), slices.Compact(wantGroups)
	if !slices.Equal(groups, wantGroups) {
		t.Errorf("alias program groups %v, want %v", groups, wantGroups)
	}

	// A uid without an account: refused.
	os.Remove(out + "/uid")
	os.Chown(aliasesFile, noAccountUID, alias.GID)
	r = rw.d.DeliverAs(context.Background(), rw.exe, nil, rw.msg, "a@b", "prog@test.example")
	want(t, r, outcome.Temp, "4.3.0 alias prog: control/aliases: its owner's account: user: unknown userid 4323 (give uid 4323 an account")
	if _, err := os.Stat(out + "/uid"); err == nil {
		t.Error("the alias program ran for a uid without an account")
	}
}

// As root, an alias's \name target reached through a virtual domain is
// the local user name itself, in the child as in the parent: the child
// gets "\name@host" and adds no virtualdomains prefix either.
func TestBackslashUserInVirtualDomainAsRoot(t *testing.T) {
	if !asRoot(t) {
		return
	}
	rw := newRootWorld(t)
	rw.write(rw.home+"/control/virtualdomains", "virt.example:v\n", 0)
	rw.write(rw.home+"/control/aliases", "v-info: \\bob\n", 0)
	rw.write(rw.bobHome+"/.omail", "./mbox\n|printf '%s|%s' \"$LOCAL\" \"$RECIPIENT\" > got\n", bobUID)
	r := rw.d.DeliverAs(context.Background(), rw.exe, nil, rw.msg, "a@b", "info@virt.example")
	want(t, r, outcome.OK, "mbox "+rw.bobHome+"/mbox")
	if got, _ := os.ReadFile(rw.bobHome + "/got"); string(got) != "bob|bob@test.example" {
		t.Errorf("program saw %q", got)
	}
	if uid, _ := owner(t, rw.bobHome+"/mbox"); uid != bobUID {
		t.Errorf("bob's mbox owned by %d", uid)
	}
}

// The children hold the user's groups only, never the spool's: with
// it, a user's program or .omail could read or write every mailbox of
// a Debian /var/mail (mode 660 USER:mail). dana's mailbox is such a
// one; bob tries both.
func TestChildLacksSpoolGroup(t *testing.T) {
	if !asRoot(t) {
		return
	}
	rw := newRootWorld(t)
	d, exe, msg, ctx := rw.d, rw.exe, rw.msg, context.Background()
	dana := rw.spool + "/dana"
	rw.write(dana, "From a@b Thu Jan  1 00:00:00 1970\nSubject: secret\n\ndana's secret\n\n", 0)
	os.Chown(dana, carlUID, mailGID)
	os.Chmod(dana, 0o660)
	before, _ := os.ReadFile(dana)
	rw.write(rw.bobHome+"/.omail", "|cat "+dana+" > stolen; true\n", bobUID)
	want(t, d.DeliverAs(ctx, exe, nil, msg, "a@b", "bob@test.example"), outcome.OK, "program")
	if got, _ := os.ReadFile(rw.bobHome + "/stolen"); strings.Contains(string(got), "secret") {
		t.Errorf("bob's program read dana's mailbox: %q", got)
	}
	rw.write(rw.bobHome+"/.omail", dana+"\n", bobUID)
	want(t, d.DeliverAs(ctx, exe, nil, msg, "a@b", "bob@test.example"), outcome.Temp, "permission denied")
	if after, _ := os.ReadFile(dana); string(after) != string(before) {
		t.Errorf("bob's .omail wrote into dana's mailbox:\n%s", after)
	}
}

// asRoot says whether the test runs as root. The rules for root cannot
// be exercised without root; when not root, it checks the ordinary-user
// half (TestDeliverAsOrdinaryUser) instead: root-only rules do not apply.
func asRoot(t *testing.T) bool {
	t.Helper()
	if os.Geteuid() == 0 {
		return true
	}
	t.Log("not root: checking that root-only rules do not apply")
	TestDeliverAsOrdinaryUser(t)
	return false
}

// rootWorld is an OMAIL_HOME, a spool, users and a message only root
// can read, for the tests that run as root.
type rootWorld struct {
	t                              *testing.T
	d                              *Deliverer
	exe, dir, home, spool, bobHome string
	rootHome, msg                  string
}

func newRootWorld(t *testing.T) *rootWorld {
	t.Helper()
	dir := t.TempDir()
	os.Chmod(filepath.Dir(dir), 0o755)
	os.Chmod(dir, 0o755)
	w := &rootWorld{t: t, dir: dir, exe: copyExe(t, dir), home: filepath.Join(dir, "omail"), spool: filepath.Join(dir, "spool"),
		bobHome: filepath.Join(dir, "bob"), rootHome: filepath.Join(dir, "root")}
	private := filepath.Join(dir, "queue")
	for _, d := range []string{w.home + "/control", w.spool, w.bobHome, w.rootHome, private} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The spool is root:mail 1775-like: group-writable, so the children
	// get the mail group to create mailboxes and dotlocks in it.
	os.Chown(w.spool, 0, mailGID)
	os.Chmod(w.spool, 0o1775)
	os.Chown(w.bobHome, bobUID, bobUID)
	os.Chmod(private, 0o700)
	w.write(w.home+"/control/me", "test.example\n", 0)
	w.write(w.home+"/control/mailspool", w.spool+"\n", 0)
	w.msg = filepath.Join(private, "msg")
	w.write(w.msg, hello, 0)
	os.Chmod(w.msg, 0o600) // the children cannot open it by name

	d := New(nil)
	d.Ctl.Path = w.home + "/control"
	d.Home = w.home
	d.Now = func() time.Time { return when }
	users := map[string]*User{
		"bob":  {Name: "bob", UID: bobUID, GID: bobUID, Home: w.bobHome, Dash: "-"},
		"carl": {Name: "carl", UID: carlUID, GID: carlUID},
		"toor": {Name: "toor", UID: 0, GID: 0, Home: w.rootHome},
		"root": {Name: "root", UID: 0, GID: 0, Home: w.rootHome},
	}
	d.LookupUser = func(l string) (*User, error) { return users[l], nil }
	t.Cleanup(d.Close)
	w.d = d
	return w
}

// write writes a file owned by uid.
func (w *rootWorld) write(path, s string, uid int) {
	w.t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		w.t.Fatal(err)
	}
	os.Chown(path, uid, uid)
}

// A resident child holds the open queue file of every message it
// delivers, and runs as the user: any program of that uid could take
// its descriptors (pidfd_getfd(2), ptrace, /proc/PID/fd) and read past
// the message. The child is not dumpable, which refuses them all to
// the user's processes; and the programs it runs inherit no message
// descriptor. bob's program (this binary, grabResidentFds) tries.
func TestResidentChildNotInspectable(t *testing.T) {
	if !asRoot(t) {
		return
	}
	rw := newRootWorld(t)
	rw.write(rw.bobHome+"/.omail", "|"+rw.exe+" -grab-resident-fds > grab.out\n", bobUID)
	r := rw.d.DeliverAs(context.Background(), rw.exe, nil, rw.msg, "ann@example.org", "bob@test.example")
	want(t, r, outcome.OK, "program")
	got, _ := os.ReadFile(rw.bobHome + "/grab.out")
	lines := strings.Split(strings.TrimSpace(string(got)), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "resident ") {
		t.Fatalf("the program did not find the resident child: %q", got)
	}
	for _, l := range lines[1:] {
		if strings.HasPrefix(l, "took ") {
			t.Errorf("bob's program took a descriptor of its resident child: %s", l)
		}
		if l == "own "+rw.msg {
			t.Errorf("bob's program inherited the message descriptor: %s", l)
		}
	}
	if !strings.Contains(string(got), "\nrefused ") {
		t.Errorf("no descriptor refused: %q", got)
	}
}

// grabResidentFds is the user's program of TestResidentChildNotInspectable:
// it finds the resident child among its ancestors, tries to take each of
// its first descriptors, and lists the files it holds itself.
func grabResidentFds() int {
	pid := os.Getppid()
	for {
		cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		if err != nil || pid <= 1 {
			fmt.Println("no resident child among the ancestors")
			return 0
		}
		if strings.HasSuffix(string(cmdline), "\x00-local\x00-resident\x00") {
			break
		}
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return 1
		}
		_, rest, _ := strings.Cut(string(stat), ") ")
		f := strings.Fields(rest)
		if len(f) < 2 {
			return 1
		}
		if pid, err = strconv.Atoi(f[1]); err != nil {
			return 1
		}
	}
	fmt.Println("resident", pid)
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		target, _ := os.Readlink("/proc/self/fd/" + e.Name())
		fmt.Println("own", target)
	}
	pfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		fmt.Println("pidfd_open:", err)
		return 0
	}
	for fd := 0; fd < 32; fd++ {
		got, err := unix.PidfdGetfd(pfd, fd, 0)
		switch {
		case err == nil:
			target, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(got))
			fmt.Println("took", fd, target)
		case err == unix.EPERM:
			fmt.Println("refused", fd)
		}
	}
	return 0
}

// A user's mailbox in the mail spool must be the user's: in a spool open
// to all, another user could make it first and read what is appended
// (Postfix's strict_mailbox_ownership). It is then a temporary failure
// naming the owner. A file a user's .omail names is the user's choice,
// whoever owns it.
func TestSpoolMailboxOwnedByOther(t *testing.T) {
	if !asRoot(t) {
		return
	}
	rw := newRootWorld(t)
	os.Chmod(rw.spool, 0o1777)
	planted := rw.spool + "/carl"
	rw.write(planted, "", bobUID)
	os.Chmod(planted, 0o666)
	want(t, rw.d.DeliverAs(context.Background(), rw.exe, nil, rw.msg, "a@b", "carl@test.example"), outcome.Temp,
		"4.2.0 mailbox "+planted+" is owned by uid 4321, not by its user (uid 4322)")
	if b, _ := os.ReadFile(planted); len(b) != 0 {
		t.Errorf("carl's mail went into a mailbox bob owns: %q", b)
	}
	os.Chown(planted, carlUID, carlUID)
	want(t, rw.d.DeliverAs(context.Background(), rw.exe, nil, rw.msg, "a@b", "carl@test.example"), outcome.OK, "mbox "+planted)

	shared := rw.dir + "/shared"
	rw.write(shared, "", carlUID)
	os.Chmod(shared, 0o666)
	rw.write(rw.bobHome+"/.omail", shared+"\n", bobUID)
	want(t, rw.d.DeliverAs(context.Background(), rw.exe, nil, rw.msg, "a@b", "bob@test.example"), outcome.OK, "mbox "+shared)
}

// A spool mailbox with another name is refused, 4.2.0: in a spool open
// to all, without the kernel's protected_hardlinks, another user may
// have made mailspool/bob a hard link to bob's ~/.profile before bob had
// a mailbox (root makes the link here, in that user's place). The
// delivery would append to ~/.profile as bob.
func TestSpoolMailboxHardLink(t *testing.T) {
	if !asRoot(t) {
		return
	}
	rw := newRootWorld(t)
	os.Chmod(rw.spool, 0o1777)
	profile := rw.bobHome + "/.profile"
	rw.write(profile, "export PATH=/usr/bin:/bin\n", bobUID)
	if err := os.Link(profile, rw.spool+"/bob"); err != nil {
		t.Fatal(err)
	}
	want(t, rw.d.DeliverAs(context.Background(), rw.exe, nil, rw.msg, "mallory@example.org", "bob@test.example"), outcome.Temp,
		"4.2.0 mailbox "+rw.spool+"/bob has 2 links, not one")
	if b, _ := os.ReadFile(profile); string(b) != "export PATH=/usr/bin:/bin\n" {
		t.Errorf("bob's ~/.profile, linked as his spool mailbox, is now %q", b)
	}
	os.Remove(profile)
	want(t, rw.d.DeliverAs(context.Background(), rw.exe, nil, rw.msg, "ann@example.org", "bob@test.example"), outcome.OK, "mbox "+rw.spool+"/bob")
}
