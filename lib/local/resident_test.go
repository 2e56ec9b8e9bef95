package local

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"omail/lib/outcome"
)

// residentOf is the resident child for a user's ids, or nil.
func residentOf(d *Deliverer, exe string, uid int) *resident {
	rs := d.pool()
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for _, r := range rs.kids {
		if r.uid == uid && strings.HasPrefix(r.key, exe+"\x00") {
			return r
		}
	}
	return nil
}

func (rs *residents) started() int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.starts
}

// As root, one resident child per user delivers every message to that
// user: mbox deliveries start no program, programs fork from it as the
// user, a child that dies defers only the delivery it had in flight,
// and an idle child is ended and replaced when needed.
func TestResidentChildren(t *testing.T) {
	if !asRoot(t) {
		return
	}
	w := newRootWorld(t)
	d, exe, ctx := w.d, w.exe, context.Background()
	rs := d.pool()
	deliver := func(rcpt string) outcome.Result { return d.DeliverAs(ctx, exe, nil, w.msg, "ann@example.org", rcpt) }

	// Three mbox deliveries: one child, as bob, and bob owns the mbox.
	w.write(w.bobHome+"/.omail", "./mbox\n", bobUID)
	for i := 0; i < 3; i++ {
		want(t, deliver("bob@test.example"), outcome.OK, "mbox "+w.bobHome+"/mbox")
	}
	if n := rs.started(); n != 1 {
		t.Fatalf("%d children started for three deliveries to bob", n)
	}
	bob := residentOf(d, exe, bobUID)
	if bob == nil {
		t.Fatal("no resident child for bob")
	}
	// A process group of its own: a terminal's Ctrl-C to omail-deliver
	// -flush must not kill deliveries in progress under it.
	if pg, err := syscall.Getpgid(bob.cmd.Process.Pid); err != nil || pg == syscall.Getpgrp() {
		t.Errorf("the child's process group is %d (%v), ours %d", pg, err, syscall.Getpgrp())
	}
	if uid, _ := owner(t, w.bobHome+"/mbox"); uid != bobUID {
		t.Errorf("bob's mbox owned by %d", uid)
	}
	if b, _ := os.ReadFile(w.bobHome + "/mbox"); strings.Count(string(b), "\nhello\n") != 3 {
		t.Errorf("bob's mbox: %q", b)
	}

	// Programs fork from that child, as bob.
	w.write(w.bobHome+"/.omail", "|echo $PPID $(id -u) >> ppid.out\n", bobUID)
	want(t, deliver("bob@test.example"), outcome.OK, "program")
	want(t, deliver("bob@test.example"), outcome.OK, "program")
	line := strconv.Itoa(bob.cmd.Process.Pid) + " " + strconv.Itoa(bobUID) + "\n"
	if got, _ := os.ReadFile(w.bobHome + "/ppid.out"); string(got) != line+line {
		t.Errorf("programs ran from %q, want twice %q", got, line)
	}
	if n := rs.started(); n != 1 {
		t.Errorf("%d children started", n)
	}

	// carl gets a child of his own.
	want(t, deliver("carl@test.example"), outcome.OK, "mbox "+w.spool+"/carl")
	carl := residentOf(d, exe, carlUID)
	if n := rs.started(); n != 2 || carl == nil || carl == bob {
		t.Fatalf("%d children started, carl's %v", n, carl)
	}

	// bob's child dies during a delivery: that delivery is deferred, and
	// carl's child lives on.
	w.write(w.bobHome+"/.omail", "|kill -9 $PPID\n", bobUID)
	want(t, deliver("bob@test.example"), outcome.Temp, "in flight")
	<-bob.done
	if ws, ok := bob.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Errorf("bob's child ended with %v", bob.cmd.ProcessState)
	}
	want(t, deliver("carl@test.example"), outcome.OK, "mbox "+w.spool+"/carl")
	if residentOf(d, exe, carlUID) != carl || rs.started() != 2 {
		t.Errorf("carl's child was replaced")
	}
	// The retry starts a new child for bob.
	w.write(w.bobHome+"/.omail", "./mbox\n", bobUID)
	want(t, deliver("bob@test.example"), outcome.OK, "mbox "+w.bobHome+"/mbox")
	bob2 := residentOf(d, exe, bobUID)
	if rs.started() != 3 || bob2 == nil || bob2 == bob {
		t.Errorf("no new child for bob after the first died")
	}

	// A delivery cancelled (omail-deliver stopping) kills the program it
	// runs, and the child lives on. The program says it has started
	// through a fifo.
	fifo := filepath.Join(w.bobHome, "started")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chown(fifo, bobUID, bobUID)
	w.write(w.bobHome+"/.omail", "|echo started > started; exec sleep 100000\n", bobUID)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	res := make(chan outcome.Result, 1)
	go func() { res <- d.DeliverAs(cctx, exe, nil, w.msg, "ann@example.org", "bob@test.example") }()
	if b, err := os.ReadFile(fifo); err != nil || string(b) != "started\n" {
		t.Fatalf("program start: %q %v", b, err)
	}
	cancel()
	want(t, <-res, outcome.Temp, "program killed")
	if residentOf(d, exe, bobUID) != bob2 || rs.started() != 3 {
		t.Errorf("bob's child was replaced after a cancelled delivery")
	}
	w.write(w.bobHome+"/.omail", "./mbox\n", bobUID)

	// Idle children are ended; they exit by themselves, successfully.
	rs.closeIdle()
	for _, r := range []*resident{bob2, carl} {
		<-r.done
		if !r.cmd.ProcessState.Success() {
			t.Errorf("idle child (uid %d) ended with %v", r.uid, r.cmd.ProcessState)
		}
	}
	if residentOf(d, exe, bobUID) != nil || residentOf(d, exe, carlUID) != nil {
		t.Error("ended children still taken for deliveries")
	}
	want(t, deliver("bob@test.example"), outcome.OK, "mbox "+w.bobHome+"/mbox")
	if rs.started() != 4 {
		t.Errorf("%d children started, want a fourth after the idle end", rs.started())
	}
}

// A resident child that says something the parent does not understand
// is killed, and its delivery deferred; so is one that exits without a
// word. (The child runs as the user, who can make it say anything.)
func TestResidentChildNonsense(t *testing.T) {
	if !asRoot(t) {
		return
	}
	w := newRootWorld(t)
	for _, c := range []struct{ script, want string }{
		{"printf 'R\\0001\\000K\\000delivered\\000\\n' >&3; exec sleep 1000", "report"},
		{"printf 'R\\0002\\000K\\000delivered\\000' >&3; exec sleep 1000", "unknown delivery 2"},
		{"exit 0", "ended with the delivery in flight"},
	} {
		exe := filepath.Join(w.dir, "fake-child")
		os.Remove(exe)
		w.write(exe, "#!/bin/sh\n"+c.script+"\n", 0)
		os.Chmod(exe, 0o755)
		r := w.d.DeliverAs(context.Background(), exe, nil, w.msg, "a@b", "bob@test.example")
		want(t, r, outcome.Temp, c.want)
	}
}

// Deliveries in flight at once share the one child for their ids, each
// answered on its own.
func TestResidentConcurrent(t *testing.T) {
	if !asRoot(t) {
		return
	}
	w := newRootWorld(t)
	w.write(w.bobHome+"/.omail", "./mbox\n", bobUID)
	const n = 8
	res := make(chan outcome.Result, 2*n)
	for i := 0; i < n; i++ {
		for _, rcpt := range []string{"bob@test.example", "carl@test.example"} {
			go func() { res <- w.d.DeliverAs(context.Background(), w.exe, nil, w.msg, "a@b", rcpt) }()
		}
	}
	for i := 0; i < 2*n; i++ {
		want(t, <-res, outcome.OK, "mbox ")
	}
	for _, box := range []string{w.bobHome + "/mbox", w.spool + "/carl"} {
		if b, _ := os.ReadFile(box); strings.Count(string(b), "\nhello\n") != n {
			t.Errorf("%s holds %d messages, want %d", box, strings.Count(string(b), "\nhello\n"), n)
		}
	}
	if s := w.d.pool().started(); s != 2 {
		t.Errorf("%d children started for two users", s)
	}
}

// A .omail of 2,000 forwarding addresses, delivered by a resident child:
// its report is longer than a packet, so the addresses come in F
// packets ahead of it, every one of them, in order; the same child
// then delivers again.
func TestResidentManyForwards(t *testing.T) {
	if !asRoot(t) {
		return
	}
	rw := newRootWorld(t)
	var dot strings.Builder
	var wantFwd []string
	for i := range 2000 {
		a := "subscriber-" + strconv.Itoa(i) + "-" + strings.Repeat("x", 40) + "@lists.example.org"
		wantFwd = append(wantFwd, a)
		dot.WriteString("&" + a + "\n")
	}
	dot.WriteString("./mbox\n")
	rw.write(rw.bobHome+"/.omail", dot.String(), bobUID)
	for round := range 2 {
		r := rw.d.DeliverAs(context.Background(), rw.exe, nil, rw.msg, "ann@example.org", "bob@test.example")
		want(t, r, outcome.OK, "mbox "+rw.bobHome+"/mbox")
		if !slices.Equal(r.Forward, wantFwd) {
			t.Fatalf("round %d: %d forwards, want %d", round, len(r.Forward), len(wantFwd))
		}
	}
	if n := rw.d.pool().started(); n != 1 {
		t.Errorf("%d resident children started, want 1", n)
	}
	mb, _ := os.ReadFile(rw.bobHome + "/mbox")
	if n := strings.Count(string(mb), "\nhello\n"); n != 2 {
		t.Errorf("%d copies in bob's mbox, want 2", n)
	}
}

// A forwarding address that cannot fit in any packet makes the report a
// temporary failure saying so, never a packet the parent refuses.
func TestResidentReportAddressTooLong(t *testing.T) {
	child, parent := packetPair(t)
	long := strings.Repeat("x", maxPacket) + "@example.org"
	sendReport(child, "7", outcome.Result{Status: outcome.OK, Text: "forward", Forward: []string{"a@example.org", long}})
	buf := make([]byte, maxPacket)
	n, _, _, _, err := parent.ReadMsgUnix(buf, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := "R\x007\x00Z\x004.3.5 forwarding address of 65548 bytes: more than a delivery child reports\x00"; string(buf[:n]) != want {
		t.Errorf("packet %q, want %q", buf[:n], want)
	}
}

// A delivery's forwarding addresses are bounded in number as well as in
// bytes: as many as a .omail can hold (maxForwards) go through, from
// sendReport to the parent's answer; one more is a temporary failure
// saying so in the child. A child that sends more anyway (it runs as the
// user) is refused before the parent holds them: 16 MiB of one-byte
// addresses would be 8 million strings, hundreds of MiB.
func TestResidentForwardsBounded(t *testing.T) {
	child, parent := packetPair(t)
	newResident := func() (*resident, chan outcome.Result) {
		ch := make(chan outcome.Result, 1)
		return &resident{rs: &residents{d: &Deliverer{}}, waiting: map[uint64]chan outcome.Result{1: ch}, forwards: map[uint64]*forwards{}}, ch
	}
	many := make([]string, maxForwards+1)
	for i := range many {
		many[i] = "a"
	}
	for _, n := range []int{maxForwards, maxForwards + 1} {
		go sendReport(child, "1", outcome.Result{Status: outcome.OK, Text: "forward", Forward: many[:n]})
		r, ch := newResident()
		buf := make([]byte, maxPacket)
		for len(ch) == 0 {
			k, _, _, _, err := parent.ReadMsgUnix(buf, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := r.answer(buf[:k]); err != nil {
				t.Fatalf("%d addresses: %v", n, err)
			}
		}
		res := <-ch
		if n == maxForwards && (res.Status != outcome.OK || len(res.Forward) != n) {
			t.Errorf("%d addresses: %v %q, %d forwards", n, res.Status, res.Text, len(res.Forward))
		}
		if n > maxForwards && (res.Status != outcome.Temp || !strings.Contains(res.Text, "more than a delivery child reports") || len(res.Forward) != 0) {
			t.Errorf("%d addresses: %v %q, %d forwards", n, res.Status, res.Text, len(res.Forward))
		}
	}

	// A child that sends F packets of one-byte addresses until refused.
	r, _ := newResident()
	p := []byte("F\x001\x00")
	for len(p)+2 <= maxPacket {
		p = append(p, 'a', 0)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var held int
	for range 2 * maxForwardBytes / maxPacket {
		if err := r.answer(p); err != nil {
			break
		}
		held = len(r.forwards[1].addrs)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if held > maxForwards {
		t.Errorf("the parent took %d forwarding addresses of one delivery, more than %d", held, maxForwards)
	}
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 4*maxForwardBytes {
		t.Errorf("one delivery's forwarding addresses hold %d MiB of the parent's heap", grown>>20)
	}
	runtime.KeepAlive(r)
}

// packetPair is a child's and a parent's end of a socket pair, as a
// resident child's.
func packetPair(t *testing.T) (child, parent *net.UnixConn) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) *net.UnixConn {
		f := os.NewFile(uintptr(fd), "pair")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c.(*net.UnixConn)
	}
	return conn(fds[0]), conn(fds[1])
}
