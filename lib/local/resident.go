package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"omail/lib/dotomail"
	"omail/lib/home"
	"omail/lib/outcome"
	"omail/lib/qexit"
)

// Resident delivery children. A root omail-deliver does not start a
// child per delivery: it keeps one long-lived child per set of ids in
// use (uid, gid, supplementary groups), started as
//
//	omail-deliver -local -resident
//
// as root, with those ids to take on a pipe, its fd 4, and
// OMAIL_LOCAL_IDS=4 (drop.go: it makes itself not dumpable first), an
// environment of OMAIL_HOME and PATH otherwise, the working directory
// /, and on fd 3 its end of a
// SOCK_SEQPACKET socket pair. Every packet is one message, its fields
// separated by NUL:
//
//	parent to child   D NUL ID NUL STEP NUL SENDER NUL RCPT NUL MSGPATH NUL DID NUL FRESH NUL LEN
//	                  deliver: STEP is an OMAIL_LOCAL_STEP value; the
//	                  message's open descriptor comes with the packet
//	                  (SCM_RIGHTS), since the user cannot open the queue
//	                  file; MSGPATH is for the texts only; DID is the
//	                  delivery id (once.go), FRESH "1" on the message's
//	                  first attempt, else "0"; LEN the message's length
//	                  when it is the start of the file (WithMessageLen),
//	                  else empty: the whole file
//	parent to child   C NUL ID
//	                  cancel delivery ID, when the caller's context ends
//	                  (omail-deliver's second SIGTERM: the first lets
//	                  deliveries in progress finish): a program it runs
//	                  is killed; a report still follows
//	child to parent   F NUL ID NUL FORWARD NUL [FORWARD NUL]...
//	                  forwarding addresses of delivery ID, ahead of its
//	                  report, when they do not all fit in its packet (a
//	                  .omail of many &addr lines): as many packets as
//	                  needed, in order
//	child to parent   R NUL ID NUL REPORT
//	                  the outcome of delivery ID, in lib/outcome's report
//	                  format (K/Z/D NUL TEXT NUL [FORWARD NUL]...); the
//	                  addresses of its F packets come before its own
//
// ID is a decimal number the parent chose. The child delivers each
// request in a goroutine of its own, so one slow delivery holds up no
// other, and a program delivery (|cmd) still forks as the user; mbox and
// Maildir deliveries cost no program start at all. The parent shuts its
// end for writing when the child has had nothing to do for Idle: the
// child finishes what it has, reports it, and exits. A child that dies,
// or says anything the parent does not understand (it runs as the user,
// who may ptrace it), is killed, and each delivery it had in flight is a
// temporary failure, retried later like any other; the next delivery
// for those ids starts a new child.

// ResidentIdle is how long a resident child may have nothing to do
// before it is ended, when Deliverer.Idle is zero.
const ResidentIdle = time.Minute

// maxPacket bounds one packet of the protocol: addresses, a path, a step
// and a report all fit many times over; forwarding addresses beyond it
// go in F packets.
const maxPacket = 64 << 10

// maxForwardBytes bounds the forwarding addresses of one delivery from a
// resident child, in bytes: far more than a .omail list holds (dotomail
// allows 1 MiB of lines; 2,000 addresses are about 100 KiB), and a bound
// on what a child, which runs as the user, can make its parent hold.
// A delivery with more is a temporary failure saying so.
const maxForwardBytes = 16 << 20

// maxForwards bounds the forwarding addresses of one delivery in
// number: a .omail holds at most dotomail.MaxSize bytes, so at most one
// address line for every two bytes (one character and a newline, the
// last line without it). Millions of one-byte addresses in 16 MiB would
// cost the parent hundreds of MiB of string headers; this many, a few.
const maxForwards = dotomail.MaxSize/2 + 1

// residents are the resident children of one Deliverer, by ids.
type residents struct {
	d    *Deliverer
	mu   sync.Mutex
	kids map[string]*resident
	// starts counts the children started, for the tests.
	starts int
}

// resident is one child, and the deliveries it has in flight.
type resident struct {
	rs   *residents
	key  string
	uid  int
	cmd  *exec.Cmd
	conn *net.UnixConn
	errs *limited // its standard error, read once it has exited
	done chan struct{}

	// Guarded by rs.mu.
	next    uint64
	waiting map[uint64]chan outcome.Result
	// forwards are the addresses of F packets, by delivery, until its
	// report comes.
	forwards map[uint64]*forwards
	closing  bool // ended: takes no new deliveries
	idle     *time.Timer
}

// pool is d's resident children, made on first use.
func (d *Deliverer) pool() *residents {
	d.residentOnce.Do(func() { d.residents = &residents{d: d, kids: map[string]*resident{}} })
	return d.residents
}

func idsKey(exe string, uid, gid int, groups []int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\x00%d\x00%d", exe, uid, gid)
	for _, g := range groups {
		fmt.Fprintf(&b, "\x00%d", g)
	}
	return b.String()
}

// residentDeliver delivers one message through the resident child for
// the given ids, starting it when there is none.
func (d *Deliverer) residentDeliver(ctx context.Context, exe string, uid, gid int, groups []int, step string, f *os.File, msgPath, sender, rcpt string) outcome.Result {
	rs := d.pool()
	r, id, ch, err := rs.take(exe, uid, gid, groups)
	if err != nil {
		return outcome.Tempf("4.3.0 local delivery child (uid %d): %v", uid, err)
	}
	at, _ := ctx.Value(attemptKey{}).(attempt)
	fresh := "0"
	if at.fresh {
		fresh = "1"
	}
	size := ""
	if n, ok := ctx.Value(messageLenKey{}).(int64); ok {
		size = strconv.FormatInt(n, 10)
	}
	req := strings.Join([]string{"D", strconv.FormatUint(id, 10), step, sender, rcpt, msgPath, at.id, fresh, size}, "\x00")
	if _, _, err := r.conn.WriteMsgUnix([]byte(req), unix.UnixRights(int(f.Fd())), nil); err != nil {
		r.fail(fmt.Errorf("sending a delivery: %v", err))
	}
	select {
	case res := <-ch:
		return res
	case <-ctx.Done():
		// The caller gave up: the child kills a program it runs for
		// this delivery and reports; a dead child reports through fail.
		r.conn.WriteMsgUnix([]byte("C\x00"+strconv.FormatUint(id, 10)), nil, nil)
		return <-ch
	}
}

// take finds or starts the child for the ids and registers one delivery
// with it.
func (rs *residents) take(exe string, uid, gid int, groups []int) (*resident, uint64, chan outcome.Result, error) {
	key := idsKey(exe, uid, gid, groups)
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r := rs.kids[key]
	if r == nil {
		var err error
		if r, err = rs.start(key, exe, uid, gid, groups); err != nil {
			return nil, 0, nil, err
		}
		rs.kids[key] = r
	}
	if r.idle != nil {
		r.idle.Stop()
		r.idle = nil
	}
	r.next++
	ch := make(chan outcome.Result, 1)
	r.waiting[r.next] = ch
	return r, r.next, ch, nil
}

// start starts a resident child.
func (rs *residents) start(key, exe string, uid, gid int, groups []int) (*resident, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "resident"), os.NewFile(uintptr(fds[1]), "resident-child")
	defer theirs.Close()
	c, err := net.FileConn(ours)
	ours.Close()
	if err != nil {
		return nil, err
	}
	conn, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, errors.New("socket pair is not a unix socket")
	}
	// Started as root, with the ids to take on a pipe, its fd 4
	// (IDsEnv): the child makes itself not dumpable before it takes
	// them (enterChild). Started with the user's ids, it would be
	// dumpable, and its fd 3 the user's for the taking, until its code
	// first ran.
	idsR, idsW, err := os.Pipe()
	if err != nil {
		conn.Close()
		return nil, err
	}
	defer idsR.Close()
	cmd := exec.Command(exe, "-local", "-resident")
	cmd.Env = append([]string{"OMAIL_HOME=" + rs.d.Home, "PATH=" + rs.d.path(), IDsEnv + "=" + strconv.Itoa(idsFD)}, rs.d.crashEnv...)
	cmd.Dir = "/"
	errs := &limited{max: ProgramOutput}
	cmd.Stderr = errs
	cmd.ExtraFiles = []*os.File{theirs, idsR}
	// Pdeathsig: a child never outlives omail-deliver. A delivery it
	// finished after its parent died would be one the next attempt
	// cannot see coming, and could make twice (docs/RELIABILITY.md).
	// The child sets it again after its change of ids, which clears
	// it. Setpgid: a Ctrl-C at the terminal of an omail-deliver -flush
	// reaches that process alone, which lets deliveries in progress
	// finish; in its process group the child (and the programs it
	// runs) would die under them, and a delivery made but not reported
	// is made again.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		conn.Close()
		idsW.Close()
		return nil, err
	}
	// The child reads its ids first thing, to their end; more than a
	// pipe holds (many groups) is written as it reads. A child that
	// dies first makes the write fail, and its start a failure (read).
	go func() {
		io.WriteString(idsW, encodeIDs(uid, gid, groups))
		idsW.Close()
	}()
	rs.starts++
	r := &resident{rs: rs, key: key, uid: uid, cmd: cmd, conn: conn, errs: errs, done: make(chan struct{}), waiting: map[uint64]chan outcome.Result{}, forwards: map[uint64]*forwards{}}
	go r.read()
	return r, nil
}

// read takes the child's reports until it ends, then reaps it.
func (r *resident) read() {
	buf := make([]byte, maxPacket)
	var err error
	for {
		var n, flags int
		n, _, flags, _, err = r.conn.ReadMsgUnix(buf, nil)
		if err == nil && n == 0 {
			err = io.EOF // the child closed its end
		}
		if err != nil {
			break
		}
		if flags&unix.MSG_TRUNC != 0 {
			err = errors.New("over-long report")
			break
		}
		if err = r.answer(buf[:n]); err != nil {
			break
		}
	}
	r.fail(err)
}

// forwards are the forwarding addresses a delivery's F packets brought.
type forwards struct {
	addrs []string
	bytes int
}

// answer takes one packet from the child: a report, handed to the
// delivery waiting for it, or forwarding addresses to add to its report.
func (r *resident) answer(p []byte) error {
	kind, rest, _ := bytes.Cut(p, []byte{0})
	idText, rep, ok := bytes.Cut(rest, []byte{0})
	id, err := strconv.ParseUint(string(idText), 10, 64)
	if (string(kind) != "R" && string(kind) != "F") || !ok || err != nil {
		return fmt.Errorf("bad packet %.200q", p)
	}
	var res outcome.Result
	var addrs []string
	if string(kind) == "R" {
		res, err = outcome.ParseReport(rep)
	} else {
		addrs, err = parseForwards(rep)
	}
	if err != nil {
		return err
	}
	rs := r.rs
	rs.mu.Lock()
	defer rs.mu.Unlock()
	ch, ok := r.waiting[id]
	if !ok {
		return fmt.Errorf("report for unknown delivery %d", id)
	}
	fw := r.forwards[id]
	if string(kind) == "F" {
		if fw == nil {
			fw = &forwards{}
			r.forwards[id] = fw
		}
		// sendReport never sends more.
		if fw.bytes+len(rep) > maxForwardBytes || len(fw.addrs)+len(addrs) > maxForwards {
			return fmt.Errorf("delivery %d: forwarding addresses over %d bytes or %d addresses", id, maxForwardBytes, maxForwards)
		}
		fw.addrs = append(fw.addrs, addrs...)
		fw.bytes += len(rep)
		return nil
	}
	if fw != nil {
		res.Forward = append(fw.addrs, res.Forward...)
		delete(r.forwards, id)
	}
	delete(r.waiting, id)
	ch <- res
	if len(r.waiting) == 0 && !r.closing {
		idle := rs.d.Idle
		if idle <= 0 {
			idle = ResidentIdle
		}
		r.idle = time.AfterFunc(idle, func() { rs.endIdle(r) })
	}
	return nil
}

// endIdle ends r if it still has nothing to do: no new delivery goes to
// it, and its end of the socket is shut for writing, which the child
// reads as "finish and exit".
func (rs *residents) endIdle(r *resident) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if r.closing || len(r.waiting) > 0 {
		return
	}
	r.closing = true
	if rs.kids[r.key] == r {
		delete(rs.kids, r.key)
	}
	r.conn.CloseWrite()
}

// closeIdle ends every child that has nothing to do now, as its idle
// timer would.
func (rs *residents) closeIdle() {
	rs.mu.Lock()
	var idle []*resident
	for _, r := range rs.kids {
		if len(r.waiting) == 0 {
			idle = append(idle, r)
		}
	}
	rs.mu.Unlock()
	for _, r := range idle {
		rs.endIdle(r)
	}
}

// fail ends r after an error or its exit: it is killed (it may be alive
// and talking nonsense) and reaped, and each delivery still waiting is a
// temporary failure. Only the first call does anything.
func (r *resident) fail(cause error) {
	rs := r.rs
	rs.mu.Lock()
	if r.waiting == nil {
		rs.mu.Unlock()
		return
	}
	r.closing = true
	if rs.kids[r.key] == r {
		delete(rs.kids, r.key)
	}
	if r.idle != nil {
		r.idle.Stop()
	}
	waiting := r.waiting
	r.waiting = nil
	r.forwards = nil
	rs.mu.Unlock()

	if !errors.Is(cause, io.EOF) || len(waiting) > 0 {
		r.cmd.Process.Kill()
	}
	r.conn.Close()
	werr := r.cmd.Wait()
	text := outcome.Tempf("4.3.0 local delivery child (uid %d) ended with the delivery in flight: %v (%v) %s", r.uid, cause, werr, strings.TrimSpace(r.errs.String()))
	for _, ch := range waiting {
		ch <- text
	}
	close(r.done)
}

// Close ends every resident child after the deliveries in flight. It
// does not wait for them to exit.
func (d *Deliverer) Close() {
	rs := d.pool()
	rs.mu.Lock()
	kids := make([]*resident, 0, len(rs.kids))
	for _, r := range rs.kids {
		kids = append(kids, r)
	}
	rs.mu.Unlock()
	for _, r := range kids {
		rs.mu.Lock()
		r.closing = true
		if rs.kids[r.key] == r {
			delete(rs.kids, r.key)
		}
		rs.mu.Unlock()
		r.conn.CloseWrite()
	}
}

// serve is the resident child: "omail-deliver -local -resident", as the
// ids its parent chose, reading requests from fd 3 until the parent
// shuts its end, then finishing what it has.
func serve(env home.Env, stderr io.Writer) int {
	f := os.NewFile(3, "resident")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		fmt.Fprintf(stderr, "omail-deliver: -local -resident: fd 3: %v\n", err)
		return qexit.Temp
	}
	conn, ok := c.(*net.UnixConn)
	if !ok {
		fmt.Fprintln(stderr, "omail-deliver: -local -resident: fd 3 is not a unix socket")
		return qexit.Temp
	}
	defer conn.Close()
	d := New(env)
	if p := env.Get("PATH"); p != "" {
		d.Path = p
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		cancels = map[string]context.CancelFunc{}
	)
	buf := make([]byte, maxPacket)
	oob := make([]byte, unix.CmsgSpace(4*4))
	code := qexit.OK
	for {
		n, oobn, flags, _, err := conn.ReadMsgUnix(buf, oob)
		if err != nil || n == 0 {
			break // the parent is done with us, or gone
		}
		msg := receivedFile(oob[:oobn])
		if flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 {
			if msg != nil {
				msg.Close()
			}
			fmt.Fprintln(stderr, "omail-deliver: -local -resident: over-long request")
			code = qexit.Temp
			break
		}
		f := strings.Split(string(buf[:n]), "\x00")
		switch {
		case len(f) == 2 && f[0] == "C" && msg == nil:
			mu.Lock()
			if cancel := cancels[f[1]]; cancel != nil {
				cancel()
			}
			mu.Unlock()
			continue
		case len(f) == 9 && f[0] == "D" && msg != nil:
		default:
			if msg != nil {
				msg.Close()
			}
			fmt.Fprintf(stderr, "omail-deliver: -local -resident: bad request %q\n", buf[:n])
			code = qexit.Temp
		}
		if code != qexit.OK {
			break
		}
		id, step, sender, rcpt := f[1], f[2], f[3], f[4]
		ctx := withAttempt(context.Background(), f[6], f[7] == "1")
		if f[8] != "" {
			size, err := strconv.ParseInt(f[8], 10, 64)
			if err != nil || size < 0 {
				msg.Close()
				fmt.Fprintf(stderr, "omail-deliver: -local -resident: bad request %q\n", buf[:n])
				code = qexit.Temp
				break
			}
			ctx = WithMessageLen(ctx, size)
		}
		ctx, cancel := context.WithCancel(ctx)
		mu.Lock()
		cancels[id] = cancel
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer msg.Close()
			var res outcome.Result
			if size, r := messageSize(ctx, msg); r != nil {
				res = *r
			} else {
				res = d.step(ctx, step, sender, rcpt, msg, size)
			}
			mu.Lock()
			delete(cancels, id)
			mu.Unlock()
			cancel()
			sendReport(conn, id, res)
		}()
	}
	wg.Wait()
	return code
}

// sendReport sends the report of delivery id to the parent: one R
// packet, preceded by F packets for the forwarding addresses that do
// not fit in it.
func sendReport(conn *net.UnixConn, id string, res outcome.Result) {
	total := 0
	for _, a := range res.Forward {
		total += len(a) + 1
		if len("F\x00"+id+"\x00")+len(a)+1 > maxPacket {
			res = outcome.Tempf("4.3.5 forwarding address of %d bytes: more than a delivery child reports", len(a))
			break
		}
	}
	if total > maxForwardBytes || len(res.Forward) > maxForwards {
		res = outcome.Tempf("4.3.5 %d forwarding addresses of %d bytes: more than a delivery child reports (%d addresses, %d bytes)", len(res.Forward), total, maxForwards, maxForwardBytes)
	}
	p := outcome.AppendReport([]byte("R\x00"+id+"\x00"), res)
	if len(p) > maxPacket {
		fwd := res.Forward
		for len(fwd) > 0 {
			f := []byte("F\x00" + id + "\x00")
			for len(fwd) > 0 && len(f)+len(fwd[0])+1 <= maxPacket {
				f = append(append(f, fwd[0]...), 0)
				fwd = fwd[1:]
			}
			conn.WriteMsgUnix(f, nil, nil)
		}
		res.Forward = nil
		p = outcome.AppendReport([]byte("R\x00"+id+"\x00"), res)
	}
	conn.WriteMsgUnix(p, nil, nil)
}

// parseForwards reads the addresses of an F packet: each ends in a NUL,
// none is empty or holds a newline (ParseReport's rule).
func parseForwards(b []byte) ([]string, error) {
	if len(b) == 0 || b[len(b)-1] != 0 {
		return nil, fmt.Errorf("forwarding addresses not NUL-terminated: %.200q", b)
	}
	addrs := strings.Split(string(b[:len(b)-1]), "\x00")
	for _, a := range addrs {
		if a == "" || strings.Contains(a, "\n") {
			return nil, fmt.Errorf("bad forwarding address %.200q", a)
		}
	}
	return addrs, nil
}

// receivedFile is the one descriptor a request carries, or nil.
func receivedFile(oob []byte) *os.File {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var file *os.File
	for _, m := range msgs {
		fds, err := unix.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if file == nil {
				file = os.NewFile(uintptr(fd), "message")
			} else {
				unix.Close(fd)
			}
		}
	}
	return file
}

type messageLenKey struct{}

// WithMessageLen tells the deliveries under ctx that the message is the
// first n bytes of its file: the queue manager delivering from inside a
// single-file todo/ entry, whose envelope follows the message
// (lib/queue/todofile.go). Without it the message is the whole file.
func WithMessageLen(ctx context.Context, n int64) context.Context {
	return context.WithValue(ctx, messageLenKey{}, n)
}

// messageSize is the length of the message in the open file f: the one
// ctx gives (WithMessageLen), or the file's size. A file shorter than
// the length ctx gives is the temporary failure returned: delivering it
// would deliver a cut message.
func messageSize(ctx context.Context, f *os.File) (int64, *outcome.Result) {
	st, err := f.Stat()
	if err != nil {
		r := outcome.Tempf("4.3.0 cannot read message: %v", err)
		return 0, &r
	}
	n, ok := ctx.Value(messageLenKey{}).(int64)
	if !ok {
		return st.Size(), nil
	}
	if n > st.Size() {
		r := outcome.Tempf("4.3.0 message file has %d bytes, its state says %d", st.Size(), n)
		return 0, &r
	}
	return n, nil
}
