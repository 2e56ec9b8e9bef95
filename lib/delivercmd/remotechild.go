package delivercmd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"

	"omail/lib/control"
	"omail/lib/envelope"
	"omail/lib/home"
	"omail/lib/outcome"
	"omail/lib/qexit"
	"omail/lib/remote"
	"omail/lib/route"
)

// Remote delivery talks to the network, so it never runs as root: an
// omail-deliver started as root runs each SMTP delivery in a child,
// `omail-deliver -remote`, with the ids of the queue's owner (or of
// nobody when root owns the queue). The parent opens the message and
// hands it over as fd 0, so the child needs no access to the queue; the
// request (destination, credentials, envelope) comes on fd 3, never in
// argv where ps would show a password; the child writes one report per
// recipient, one per line, in lib/outcome's report format (the K/Z/D
// letter, NUL, the text, NUL), which the local delivery child uses too.

// remoteIDs are the ids SMTP deliveries run with when we are root: the
// user named in control/remoteuser (make install writes omailr there),
// else the queue's owner, else nobody. Never root: the SMTP client
// talks to the network.
func remoteIDs(h string, ctl *control.Dir) (uid, gid uint32, err error) {
	name, err := ctl.Line("remoteuser")
	if err != nil {
		return 0, 0, err
	}
	if name != "" {
		return userIDs(name, "control/remoteuser")
	}
	if fi, err := os.Stat(h + "/queue"); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 {
			return st.Uid, st.Gid, nil
		}
	}
	return userIDs("nobody", "the default remote delivery user")
}

// userIDs looks up an unprivileged user's uid and primary gid.
func userIDs(name, what string) (uid, gid uint32, err error) {
	u, err := user.Lookup(name)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: no user %q for remote delivery: %v", what, name, err)
	}
	id, err1 := strconv.ParseUint(u.Uid, 10, 32)
	g, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil || id == 0 {
		return 0, 0, fmt.Errorf("%s: user %q has ids %s:%s; remote delivery never runs as root", what, name, u.Uid, u.Gid)
	}
	return uint32(id), uint32(g), nil
}

// request encodes what the child needs, NUL-separated.
func request(dest route.Dest, sender string, rcpts []string) []byte {
	f := []string{"R1", dest.Domain, dest.Relay, strconv.Itoa(dest.Port), boolField(dest.RequireTLS)}
	if dest.Auth != nil {
		f = append(f, "1", dest.Auth.User, dest.Auth.Password)
	} else {
		f = append(f, "0", "", "")
	}
	f = append(f, sender)
	f = append(f, rcpts...)
	return []byte(strings.Join(f, "\x00"))
}

func boolField(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func parseRequest(b []byte) (dest route.Dest, sender string, rcpts []string, err error) {
	f := strings.Split(string(b), "\x00")
	if len(f) < 10 || f[0] != "R1" {
		return dest, "", nil, errors.New("malformed request")
	}
	port, err := strconv.Atoi(f[3])
	if err != nil {
		return dest, "", nil, errors.New("malformed port")
	}
	dest = route.Dest{Domain: f[1], Relay: f[2], Port: port, RequireTLS: f[4] == "1"}
	if f[5] == "1" {
		dest.Auth = &route.Credentials{User: f[6], Password: f[7]}
	}
	for _, a := range append([]string{f[8]}, f[9:]...) {
		if envelope.CheckAddress(a) != nil {
			return dest, "", nil, errors.New("malformed address")
		}
	}
	for _, r := range f[9:] {
		if r == "" {
			return dest, "", nil, errors.New("empty recipient")
		}
	}
	return dest, f[8], f[9:], nil
}

// remoteViaChild returns the Remote transport for a root omail-deliver.
// Each child lives for one delivery, so what must outlive one (the
// connection limit, the back-off of a destination that failed) is kept
// here in the parent, per destination.
func remoteViaChild(env home.Env, exe string, uid, gid uint32, limiter *remote.Limiter, backoff *remote.Backoff, stderr io.Writer) func(ctx context.Context, dest route.Dest, msgPath, sender string, rcpts []string) []outcome.Result {
	return func(ctx context.Context, dest route.Dest, msgPath, sender string, rcpts []string) []outcome.Result {
		all := func(text string) []outcome.Result {
			out := make([]outcome.Result, len(rcpts))
			for i := range out {
				out[i] = outcome.Result{Status: outcome.Temp, Text: text}
			}
			return out
		}
		if dest.Wait != "" { // a 4.3.5 text: no back-off (localTrouble)
			return all(dest.Wait)
		}
		if until, ok := backoff.Until(dest.Key()); ok {
			return all(fmt.Sprintf("4.4.1 %s failed recently; not before %s", dest, until.UTC().Format("2006-01-02T15:04:05Z")))
		}
		// Stopping (the first SIGTERM): no child is started, and a wait
		// for a connection slot ends.
		wait, done := remote.UntilStop(ctx)
		release, err := limiter.Acquire(wait, dest.Key())
		done()
		if err != nil || remote.Stopping(ctx) {
			if err == nil {
				release()
			}
			return all("4.4.2 delivery interrupted")
		}
		defer release()
		res := runRemote(ctx, env, exe, uid, gid, stderr, dest, msgPath, sender, rcpts, all)
		for _, r := range res {
			if r.Status != outcome.Temp {
				backoff.Succeeded(dest.Key())
				return res
			}
		}
		if !localTrouble(res) {
			backoff.Failed(dest.Key())
		}
		return res
	}
}

// localTrouble reports whether every result is a 4.3.x deferral, the
// mail system's own trouble (a message or a DKIM key that cannot be
// read, a child that failed): no host was tried, so the destination is
// not put in back-off, and the mail of other senders to it still goes.
func localTrouble(res []outcome.Result) bool {
	for _, r := range res {
		if !strings.HasPrefix(r.Text, "4.3.") {
			return false
		}
	}
	return len(res) > 0
}

// runRemote runs one `omail-deliver -remote` child and reads its answers.
func runRemote(ctx context.Context, env home.Env, exe string, uid, gid uint32, stderr io.Writer, dest route.Dest, msgPath, sender string, rcpts []string, all func(string) []outcome.Result) []outcome.Result {
	msg, err := os.Open(msgPath)
	if err != nil {
		return all("4.3.0 cannot open the message: " + err.Error())
	}
	defer msg.Close()
	reqR, reqW, err := os.Pipe()
	if err != nil {
		return all("4.3.0 " + err.Error())
	}
	cmd := exec.CommandContext(ctx, exe, "-remote")
	// The hard stop (ctx) asks the child to cut its session off with
	// SIGINT, not SIGKILL: it closes the connection and reports at once,
	// so that a transaction the server already accepted (of several, when
	// it took only so many recipients each) counts as delivered and is
	// not sent again. A child that does not end in hardStopGrace is killed.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGINT) }
	cmd.WaitDelay = hardStopGrace
	cmd.Env = env
	cmd.Stdin = msg
	cmd.Stderr = stderr
	cmd.ExtraFiles = []*os.File{reqR}
	cmd.SysProcAttr = remoteChildAttr(uid, gid)
	out, err := cmd.StdoutPipe()
	if err != nil {
		reqR.Close()
		reqW.Close()
		return all("4.3.0 " + err.Error())
	}
	if err := cmd.Start(); err != nil {
		reqR.Close()
		reqW.Close()
		return all("4.3.0 cannot start remote delivery: " + err.Error())
	}
	reqR.Close()
	// The first stop signal reaches the child, in a process group of its
	// own, from here: it opens no new connection and finishes its
	// session. The hard stop (ctx) cuts it off (cmd.Cancel above).
	if stop := remote.StopOf(ctx); stop != nil {
		defer context.AfterFunc(stop, func() { cmd.Process.Signal(syscall.SIGTERM) })()
	}
	reqW.Write(request(dest, sender, rcpts))
	reqW.Close()
	res, rerr := outcome.ReadReports(out, len(rcpts))
	io.Copy(io.Discard, out)
	werr := cmd.Wait()
	if rerr != nil {
		return all(fmt.Sprintf("4.3.0 remote delivery child gave %d of %d answers (%v, %v)", len(res), len(rcpts), rerr, werr))
	}
	return res
}

// hardStopGrace is how long a -remote child has, after the hard stop's
// SIGINT, to close its connection and report before it is killed.
const hardStopGrace = 10 * time.Second

// runRemoteChild is `omail-deliver -remote`: one SMTP delivery, as the
// unprivileged user the parent chose, of the message on fd 0.
func runRemoteChild(env home.Env, stdin io.Reader, stdout, stderr io.Writer) int {
	// SIGTERM (from the parent, at its first stop signal): no new
	// connection; the session in progress runs to its end. SIGINT (the
	// hard stop): the session is cut off, and what it got done so far is
	// reported (an accepted transaction as delivered). Both caught first
	// thing, so that a stop that comes as the child starts is no kill.
	stop, unnotify := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer unnotify()
	hard, unnotifyHard := signal.NotifyContext(context.Background(), syscall.SIGINT)
	defer unnotifyHard()
	if os.Geteuid() == 0 {
		fmt.Fprintln(stderr, "omail-deliver: -remote refuses to run as root")
		return qexit.Temp
	}
	msg, ok := stdin.(*os.File)
	if !ok {
		fmt.Fprintln(stderr, "omail-deliver: -remote needs the message as a file on fd 0")
		return qexit.Temp
	}
	reqFile := os.NewFile(3, "request")
	req, err := io.ReadAll(io.LimitReader(reqFile, 16<<20))
	if err != nil {
		fmt.Fprintf(stderr, "omail-deliver: -remote: reading the request: %v\n", err)
		return qexit.Temp
	}
	dest, sender, rcpts, err := parseRequest(req)
	if err != nil {
		fmt.Fprintf(stderr, "omail-deliver: -remote: %v\n", err)
		return qexit.Temp
	}
	fi, err := msg.Stat()
	if err != nil {
		fmt.Fprintf(stderr, "omail-deliver: -remote: %v\n", err)
		return qexit.Temp
	}
	c, err := remote.FromControl(control.New(env.Dir()))
	if err != nil {
		fmt.Fprintf(stderr, "omail-deliver: -remote: %v\n", err)
		return qexit.Temp
	}
	size := fi.Size()
	c.Open = func(string) (io.ReadCloser, error) {
		return io.NopCloser(io.NewSectionReader(msg, 0, size)), nil
	}
	w := bufio.NewWriter(stdout)
	for _, r := range c.Deliver(remote.WithStop(hard, stop), dest, "fd 0", sender, rcpts) {
		w.Write(append(outcome.AppendReport(nil, r.Result), '\n'))
	}
	if err := w.Flush(); err != nil {
		return qexit.Temp
	}
	return qexit.OK
}

// remoteChildAttr runs the -remote child as uid and gid with no other
// groups, in a process group of its own: a Ctrl-C at the terminal of an
// omail-deliver -flush reaches that process alone, which lets the SMTP
// delivery in progress finish; killed after the message was sent and
// before its answer was read, the delivery would be made again.
func remoteChildAttr(uid, gid uint32) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}}, Setpgid: true}
}
