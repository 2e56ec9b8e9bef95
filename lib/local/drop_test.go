package local

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"omail/lib/home"
	"omail/lib/outcome"
)

func TestDecodeIDs(t *testing.T) {
	for _, c := range []struct {
		in     string
		uid    int
		gid    int
		groups []int
		bad    bool
	}{
		{in: "4321:4321", uid: 4321, gid: 4321},
		{in: "4321:0", uid: 4321, gid: 0},
		{in: "4321:4321:4242,4343", uid: 4321, gid: 4321, groups: []int{4242, 4343}},
		{in: "0:4321", bad: true},
		{in: "00:4321", bad: true},
		{in: "-1:4321", bad: true},
		{in: "+5:4321", bad: true},
		{in: "4294967295:1", bad: true},
		{in: "4294967296:1", bad: true},
		{in: "5:", bad: true},
		{in: "5", bad: true},
		{in: "5:5:", bad: true},
		{in: "5:5:1,,2", bad: true},
		{in: "5:5:1:2", bad: true},
		{in: " 5:5", bad: true},
	} {
		uid, gid, groups, err := decodeIDs(c.in)
		if c.bad {
			if err == nil {
				t.Errorf("%q: taken as %d %d %v", c.in, uid, gid, groups)
			}
			continue
		}
		if err != nil || uid != c.uid || gid != c.gid || !reflect.DeepEqual(groups, c.groups) {
			t.Errorf("%q: %d %d %v %v", c.in, uid, gid, groups, err)
		}
		if enc := encodeIDs(uid, gid, groups); enc != c.in {
			t.Errorf("%q encoded back as %q", c.in, enc)
		}
	}
}

// A delivery child run by hand as root, without ids to take, delivers
// nothing: a child never delivers as root.
func TestRunChildRefusesRoot(t *testing.T) {
	if !asRoot(t) {
		return
	}
	var out, errs strings.Builder
	code := RunChild([]string{"-local", "a@b", "bob@test.example", "/nonexistent"}, home.Env{"OMAIL_HOME=/nonexistent"}, nil, &out, &errs)
	if code != 111 || out.Len() != 0 || !strings.Contains(errs.String(), "never delivers as root") {
		t.Errorf("exit %d, report %q, error %q", code, out.String(), errs.String())
	}
}

// The drop of a delivery child started as root (enterChild): the ids,
// all three of each, and exactly the groups given; not dumpable, the
// parent-death signal set again. uid 0 is refused, a gid of 0 taken.
func TestEnterChild(t *testing.T) {
	if !asRoot(t) {
		return
	}
	// run starts the child with the ids on its fd 4, as a resident
	// child is started (where is the value of IDsEnv).
	runAt := func(where, ids string, env ...string) (string, error) {
		cmd := exec.Command(os.Args[0], "-enter-child")
		cmd.Env = append([]string{"OMAIL_HOME=/nonexistent"}, env...)
		if where != "" {
			cmd.Env = append(cmd.Env, IDsEnv+"="+where)
		}
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, ids) // fits in the pipe
		w.Close()
		defer r.Close()
		cmd.ExtraFiles = []*os.File{nil, r}
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	run := func(ids string) (string, error) {
		if ids == "" {
			return runAt("", "")
		}
		return runAt("4", ids)
	}
	for ids, want := range map[string]string{
		"4321:4322:4242,4343": "uid 4321 4321 4321 gid 4322 4322 4322 groups [4242 4343] dumpable 0 pdeathsig 9\n",
		"4321:0":              "uid 4321 4321 4321 gid 0 0 0 groups [] dumpable 0 pdeathsig 9\n",
	} {
		if got, err := run(ids); got != want || err != nil {
			t.Errorf("%s: %q (%v), want %q", ids, got, err, want)
		}
	}
	for ids, want := range map[string]string{
		"0:4321": "never runs as root",
		"":       "never delivers as root",
	} {
		if got, err := run(ids); err == nil || !strings.Contains(got, want) {
			t.Errorf("%q: %q (%v), want a refusal saying %q", ids, got, err, want)
		}
	}
	// A set-uid omail-deliver (real uid carl's, effective root's)
	// takes no ids: its caller would choose them.
	if got, err := runAt("4", "4321:4321", testRUIDEnv+"="+strconv.Itoa(carlUID)); err == nil || !strings.Contains(got, "not started as root (uid 4322, euid 0)") {
		t.Errorf("set-uid child: %q (%v), want a refusal", got, err)
	}
	// The ids on another descriptor, or none on fd 4: refused.
	for _, c := range []struct{ where, ids, want string }{
		{"3", "4321:4321", "not 4, the descriptor of the ids"},
		{"4321:4321", "4321:4321", "not 4, the descriptor of the ids"},
		{"4", "", "not UID:GID"},
	} {
		if got, err := runAt(c.where, c.ids); err == nil || !strings.Contains(got, c.want) {
			t.Errorf("%s=%s, ids %q: %q (%v), want a refusal saying %q", IDsEnv, c.where, c.ids, got, err, c.want)
		}
	}
}

// A user in many groups (sssd or AD id mapping: thousands of 10-digit
// ids) gets local mail: the ids reach the child on a pipe, which has
// no limit; in the environment, one string of more than 128 KiB, they
// made its exec fail (E2BIG).
func TestChildTakesManyGroups(t *testing.T) {
	if !asRoot(t) {
		return
	}
	rw := newRootWorld(t)
	const n = 12000
	var groups []int
	for i := 0; i < n; i++ {
		groups = append(groups, 1000000000+i)
	}
	if text := encodeIDs(bobUID, bobUID, groups); len(text) <= 128<<10 {
		t.Fatalf("the ids of %d groups are %d bytes: not over execve's limit for one string", n, len(text))
	}
	lookup := rw.d.LookupUser
	rw.d.LookupUser = func(l string) (*User, error) {
		if l == "many" {
			return &User{Name: "many", UID: bobUID, GID: bobUID, Groups: groups, Home: rw.bobHome, Dash: "-"}, nil
		}
		return lookup(l)
	}
	rw.write(rw.bobHome+"/.omail", "|id -G | tr ' ' '\\n' | sort -u | wc -l > ngroups\n", bobUID)
	want(t, rw.d.DeliverAs(context.Background(), rw.exe, nil, rw.msg, "a@b", "many@test.example"), outcome.OK, "program")
	got, err := os.ReadFile(rw.bobHome + "/ngroups")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(got)) != strconv.Itoa(n+1) { // and the primary group
		t.Errorf("the program had %s groups, want %d", strings.TrimSpace(string(got)), n+1)
	}
}

// testRUIDEnv makes showEnterChild a set-uid root process that this
// real uid started.
const testRUIDEnv = "OMAIL_TEST_RUID"

// showEnterChild is TestEnterChild's child: enterChild, then what it
// made of the process.
func showEnterChild() int {
	if ruid := os.Getenv(testRUIDEnv); ruid != "" {
		// As a set-uid root omail-deliver that ruid ran.
		n, _ := strconv.Atoi(ruid)
		if err := syscall.Setresuid(n, 0, 0); err != nil {
			fmt.Println(err)
			return 111
		}
	}
	if err := enterChild(home.Env(os.Environ())); err != nil {
		fmt.Println("enterChild:", err)
		return 111
	}
	ru, eu, su := unix.Getresuid()
	rg, eg, sg := unix.Getresgid()
	groups, err := syscall.Getgroups()
	if err != nil {
		fmt.Println(err)
		return 111
	}
	dumpable, _ := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
	var sig int32
	unix.Prctl(unix.PR_GET_PDEATHSIG, uintptr(unsafe.Pointer(&sig)), 0, 0, 0)
	fmt.Printf("uid %d %d %d gid %d %d %d groups %v dumpable %d pdeathsig %d\n", ru, eu, su, rg, eg, sg, groups, dumpable, sig)
	return 0
}

// A resident child is root from its exec until it has made itself not
// dumpable and taken the user's ids: at no moment can a process of the
// user's uid take its fd 3, the socket on which root sends it queue
// files (envelope, Bcc recipients), and answer in its name. The child
// is held (pauseChild) between its exec and its first code, where the
// Go runtime starts up, while carl's process (grabFd3) tries.
func TestChildNotDumpableFromExec(t *testing.T) {
	if !asRoot(t) {
		return
	}
	rw := newRootWorld(t)
	for _, f := range []string{"ready", "go"} {
		if err := syscall.Mkfifo(filepath.Join(rw.dir, f), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chmod(filepath.Join(rw.dir, f), 0o666) // for a child that is carl already
	}
	rw.d.crashEnv = append(rw.d.crashEnv, pauseEnv+"="+rw.dir)
	done := make(chan outcome.Result, 1)
	go func() {
		done <- rw.d.DeliverAs(context.Background(), rw.exe, nil, rw.msg, "ann@example.org", "carl@test.example")
	}()
	pids := make(chan string, 1)
	go func() {
		f, err := os.Open(filepath.Join(rw.dir, "ready"))
		if err != nil {
			pids <- ""
			return
		}
		defer f.Close()
		line, _ := bufio.NewReader(f).ReadString('\n')
		pids <- strings.TrimSpace(line)
	}()
	var pid string
	select {
	case pid = <-pids:
	case r := <-done:
		t.Fatalf("the delivery ended before its child was held: %v %q", r.Status, r.Text)
	}
	grab := exec.Command(rw.exe, "-grab-fd3", pid)
	grab.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: carlUID, Gid: carlUID}}
	got, err := grab.CombinedOutput()
	if g, err := os.OpenFile(filepath.Join(rw.dir, "go"), os.O_WRONLY, 0); err == nil {
		g.Close()
	}
	r := <-done
	if err != nil || !strings.HasPrefix(string(got), "refused") {
		t.Errorf("carl's process, as his resident child started: %q (%v)", got, err)
	}
	want(t, r, outcome.OK, "mbox "+rw.spool+"/carl")
}

// pauseEnv names the directory of the fifos where pauseChild holds a
// child, in TestChildNotDumpableFromExec.
const pauseEnv = "OMAIL_TEST_CHILD_PAUSE"

// pauseChild holds a child started by TestChildNotDumpableFromExec: it
// writes its pid to the fifo "ready" and waits for "go" to be opened
// and closed.
func pauseChild() {
	dir := os.Getenv(pauseEnv)
	if dir == "" {
		return
	}
	if f, err := os.OpenFile(filepath.Join(dir, "ready"), os.O_WRONLY, 0); err == nil {
		fmt.Fprintln(f, os.Getpid())
		f.Close()
	}
	if f, err := os.Open(filepath.Join(dir, "go")); err == nil {
		io.Copy(io.Discard, f)
		f.Close()
	}
}

// grabFd3 tries to take fd 3 of process pid, as a user's process would.
func grabFd3(pid string) int {
	n, err := strconv.Atoi(pid)
	if err != nil {
		fmt.Println("bad pid", pid)
		return 1
	}
	pfd, err := unix.PidfdOpen(n, 0)
	if err != nil {
		fmt.Println("pidfd_open:", err)
		return 1
	}
	defer unix.Close(pfd)
	fd, err := unix.PidfdGetfd(pfd, 3, 0)
	if err != nil {
		fmt.Println("refused:", err)
		return 0
	}
	target, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	fmt.Println("took fd 3:", target)
	return 0
}

// A descriptor root's omail-deliver inherited without close-on-exec (a
// cron wrapper's `exec 9</etc/shadow`) passes to a delivery child at
// its exec; the child marks it close-on-exec before anything else, and
// the user's programs never get it.
func TestProgramsGetNoInheritedDescriptor(t *testing.T) {
	if !asRoot(t) {
		return
	}
	rw := newRootWorld(t)
	secret := filepath.Join(rw.dir, "secret")
	rw.write(secret, "root's secret\n", 0)
	os.Chmod(secret, 0o600)
	fd, err := unix.Open(secret, unix.O_RDONLY, 0) // no O_CLOEXEC: inherited
	if err != nil {
		t.Fatal(err)
	}
	const leak = 99
	if err := unix.Dup2(fd, leak); err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	defer unix.Close(leak)
	rw.write(rw.bobHome+"/.omail", "|ls -l /proc/self/fd/ > got\n", bobUID)
	want(t, rw.d.DeliverAs(context.Background(), rw.exe, nil, rw.msg, "a@b", "bob@test.example"), outcome.OK, "program")
	got, err := os.ReadFile(rw.bobHome + "/got")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(got), " 0 -> ") {
		t.Fatalf("bob's program's descriptors: %q", got)
	}
	if strings.Contains(string(got), secret) {
		t.Errorf("bob's program has an inherited descriptor of root's:\n%s", got)
	}
}

// CloseOnExec marks inherited descriptors close-on-exec, with
// close_range(2) or, on a kernel without it, through /proc/self/fd.
func TestCloseOnExec(t *testing.T) {
	// nil: close_range works; else what it answers: missing (ENOSYS),
	// without CLOSE_RANGE_CLOEXEC (EINVAL), refused by seccomp (EPERM).
	for _, refusal := range []error{nil, unix.ENOSYS, unix.EINVAL, unix.EPERM} {
		noCloseRange := refusal
		if refusal != nil {
			closeRange = func(uint, uint, uint) error { return refusal }
		}
		fd, err := unix.Open("/dev/null", unix.O_RDONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := CloseOnExec(fd); err != nil {
			t.Errorf("without close_range %v: %v", noCloseRange, err)
		}
		if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC == 0 {
			t.Errorf("without close_range %v: fd flags %#x (%v)", noCloseRange, flags, err)
		}
		unix.Close(fd)
	}
	closeRange = unix.CloseRange
}
