package local

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"omail/lib/home"
	"omail/lib/mbox"
	"omail/lib/outcome"
	"omail/lib/qexit"
)

// Privilege separation. Go cannot change the uid of one goroutine, so a
// queue manager running as root delivers to a user in a child process
// with the user's uid, gid and groups: the resident child for those ids
// (resident.go, "omail-deliver -local -resident"), which takes one
// delivery after another over a socket. A child can also be run for one
// delivery, by hand,
//
//	omail-deliver -local SENDER RCPT MSGPATH
//
// with the message open on its standard input (or read from MSGPATH),
// and the delivery decided in OMAIL_LOCAL_STEP; a resident child gets
// the same decision, the step, with each request:
//
//	user<TAB>NAME<TAB>UID<TAB>GID<TAB>HOME<TAB>DASH<TAB>EXT<TAB>SPOOL
//	        deliver to this user (the parent resolved it; the child may
//	        not be able to read users/assign.cdb)
//	aliasfiles
//	        the program and file targets of RCPT's alias (the child runs
//	        as the owner of control/aliases)
//	(unset) resolve and deliver RCPT entirely, as the calling user
//
// The one-delivery child reports on its standard output in lib/outcome's
// report format (a resident child sends the same report in a packet),
// and exits 0 whenever it could report:
//
//	STATUS NUL TEXT NUL [FORWARD NUL]...
//
// STATUS is one letter, K (delivered), Z (temporary failure) or D
// (permanent failure), as qmail's delivery reports; TEXT is one line;
// each forwarding address ends with a NUL, which no address can contain.
// Anything else from the child (no report, a bad one, a non-zero exit) is
// a temporary failure.

// StepEnv is the environment variable carrying the parent's decision.
const StepEnv = "OMAIL_LOCAL_STEP"

// RunChild is the body of "omail-deliver -local SENDER RCPT MSGPATH".
// args is the whole argument vector ({"omail-deliver", "-local", SENDER,
// RCPT, MSGPATH}), or it without the program name, or the three
// arguments alone. The message is read from stdin when that is a regular
// file, else from MSGPATH. The exit code is 0 whenever a report was
// written (whatever it says), 100 for a usage error. With "-resident"
// instead of the three arguments it is the resident child (serve).
func RunChild(args []string, env home.Env, stdin io.Reader, stdout, stderr io.Writer) int {
	// Not dumpable, then the user's ids (IDsEnv), before any message
	// arrives: a child holds queue files, which hold more than the
	// message (a single-file todo/ entry: its envelope, every
	// recipient, Bcc ones included).
	if err := enterChild(env); err != nil {
		fmt.Fprintf(stderr, "omail-deliver: -local: %v\n", err)
		return qexit.Temp
	}
	if n := len(args); n > 0 && n <= 3 && args[n-1] == "-resident" && (n == 1 || args[n-2] == "-local") {
		return serve(env, stderr)
	}
	switch {
	case len(args) == 5 && args[1] == "-local":
		args = args[2:]
	case len(args) == 4 && args[0] == "-local":
		args = args[1:]
	}
	if len(args) != 3 || args[0] == "-local" || args[1] == "-local" {
		fmt.Fprintln(stderr, "usage: omail-deliver -local SENDER RCPT MSGPATH")
		return qexit.Usage
	}
	sender, rcpt, msgPath := args[0], args[1], args[2]
	d := New(env)
	if p := env.Get("PATH"); p != "" {
		d.Path = p
	}
	var msg io.ReaderAt
	var size int64
	if f, ok := stdin.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			msg, size = f, st.Size()
		}
	}
	if msg == nil {
		f, err := os.Open(msgPath)
		if err != nil {
			return report(stdout, outcome.Tempf("4.3.0 cannot open message: %v", err))
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return report(stdout, outcome.Tempf("4.3.0 cannot read message: %v", err))
		}
		msg, size = f, st.Size()
	}
	ctx, _ := attemptOf(context.Background(), msgPath, rcpt)
	return report(stdout, d.step(ctx, env.Get(StepEnv), sender, rcpt, msg, size))
}

// step carries out the parent's decision (an OMAIL_LOCAL_STEP value) for
// one message, in a delivery child: a one-shot one (RunChild) or a
// resident one (serve).
func (d *Deliverer) step(ctx context.Context, step, sender, rcpt string, msg io.ReaderAt, size int64) outcome.Result {
	switch {
	case step == "":
		if r := checkAddresses(sender, rcpt); r != nil {
			return *r
		}
		return d.deliverFrom(ctx, msg, size, sender, rcpt)
	case step == "aliasfiles":
		x, res := d.start(ctx, msg, size, sender, rcpt)
		if res != nil {
			return *res
		}
		if x.alias == nil {
			return outcome.Tempf("4.3.0 %s is no longer an alias", rcpt)
		}
		return x.deliverFiles(fileTargets(x.alias))
	case strings.HasPrefix(step, "user\t"):
		u, err := decodeUser(step)
		if err != nil {
			return outcome.Tempf("4.3.0 %v", err)
		}
		if geteuid() != u.UID {
			return outcome.Tempf("4.3.0 delivery child for %s runs as uid %d, not %d", u.Name, geteuid(), u.UID)
		}
		// The parent resolved the account; the child may not even be
		// able to read users/assign.cdb.
		x, r := d.known(ctx, msg, size, sender, rcpt, u)
		if r != nil {
			return *r
		}
		return x.deliverUser(u)
	}
	return outcome.Tempf("4.3.0 unknown %s %q", StepEnv, step)
}

// known starts a delivery to a user resolved already: rcpt's host is
// checked (unless rcpt is an alias's "\name@host") and the loop test
// done, aliases and user lookups skipped.
func (d *Deliverer) known(ctx context.Context, msg io.ReaderAt, size int64, sender, rcpt string, u *User) (*delivery, *outcome.Result) {
	x := &delivery{d: d, ctx: ctx, msg: msg, size: size, sender: sender}
	x.at, _ = ctx.Value(attemptKey{}).(attempt)
	if r := x.resolve(rcpt, false); r != nil {
		return nil, r
	}
	if r := x.checkLoop(); r != nil {
		return nil, r
	}
	x.user = u
	return x, nil
}

// report writes r for the parent (outcome.ParseReport reads it).
func report(w io.Writer, r outcome.Result) int {
	if _, err := w.Write(outcome.AppendReport(nil, r)); err != nil {
		return qexit.Temp
	}
	return qexit.OK
}

func encodeUser(u *User) (string, error) {
	for _, s := range []string{u.Name, u.Home, u.Dash, u.Ext} {
		if strings.ContainsAny(s, "\t\n\x00") {
			return "", fmt.Errorf("account %s: tab or newline in its fields", u.Name)
		}
	}
	spool := "0"
	if u.Spool {
		spool = "1"
	}
	return strings.Join([]string{"user", u.Name, strconv.Itoa(u.UID), strconv.Itoa(u.GID), u.Home, u.Dash, u.Ext, spool}, "\t"), nil
}

func decodeUser(s string) (*User, error) {
	f := strings.Split(s, "\t")
	if len(f) != 8 || f[0] != "user" {
		return nil, fmt.Errorf("bad %s", StepEnv)
	}
	uid, err1 := strconv.Atoi(f[2])
	gid, err2 := strconv.Atoi(f[3])
	if err1 != nil || err2 != nil || badLocal(f[1]) {
		return nil, fmt.Errorf("bad %s", StepEnv)
	}
	return &User{Name: f[1], UID: uid, GID: gid, Home: f[4], Dash: f[5], Ext: f[6], Spool: f[7] == "1"}, nil
}

// DeliverAs delivers like Deliver, but when this process is root it
// never writes a user's files or runs a user's programs itself: it runs
// exe (omail-deliver) as "-local" children with the user's uid, gid and
// groups, the message on their standard input, and reads their reports.
//
// u is normally nil: rcpt is resolved here. A non-nil u skips resolution
// and delivers to that user (aliases and virtualdomains not consulted).
//
// As root: a user with uid 0 is delivered in this process only when it
// is root itself (or a spool user whose mailbox root owns); alias
// program and file targets run as the owner of control/aliases, which
// must not be root. Not as root, everything happens in this process, as
// this user.
func (d *Deliverer) DeliverAs(ctx context.Context, exe string, u *User, msgPath, sender, rcpt string) outcome.Result {
	if r := checkAddresses(sender, rcpt); r != nil {
		return *r
	}
	ctx, _ = attemptOf(ctx, msgPath, rcpt)
	r := d.deliverAs(ctx, exe, u, msgPath, sender, rcpt)
	d.Crash.At("local-done")
	return r
}

// deliverAs is DeliverAs for addresses checked already (and for \user).
func (d *Deliverer) deliverAs(ctx context.Context, exe string, u *User, msgPath, sender, rcpt string) outcome.Result {
	f, size, r := openMessage(ctx, msgPath)
	if r != nil {
		return *r
	}
	defer f.Close()
	var x *delivery
	var res *outcome.Result
	if u != nil {
		x, res = d.known(ctx, f, size, sender, rcpt, u)
	} else {
		x, res = d.start(ctx, f, size, sender, rcpt)
	}
	if res != nil {
		return *res
	}
	if geteuid() != 0 {
		if x.alias != nil {
			return x.deliverAlias()
		}
		return x.deliverUser(x.user)
	}
	if x.alias == nil {
		return d.asUser(ctx, exe, x, f, msgPath)
	}
	return d.deliverAliasAsRoot(ctx, exe, x, f, msgPath)
}

// deliverAliasAsRoot carries out an alias as root (walkAlias): each
// \user target as that user, the programs and files in one child as the
// owner of control/aliases. Who runs the programs and files is settled
// first, so that a refusal comes before any delivery is made.
func (d *Deliverer) deliverAliasAsRoot(ctx context.Context, exe string, x *delivery, f *os.File, msgPath string) outcome.Result {
	ways := aliasWays{user: func(step, rcpt string) outcome.Result {
		return d.deliverAs(withStep(ctx, step), exe, nil, msgPath, x.sender, rcpt)
	}}
	if len(fileTargets(x.alias)) > 0 {
		ids, err := d.aliasOwner()
		if err != nil {
			return outcome.Tempf("4.3.0 alias %s: %v", x.local, err)
		}
		ways.files = func() outcome.Result {
			return d.child(withStep(ctx, "f"), exe, ids.UID, ids.GID, ids.Groups, "aliasfiles", f, msgPath, x.sender, x.rcpt)
		}
	}
	return x.walkAlias(ways)
}

// asUser delivers to u as root: in a child with u's ids, or here for
// root's own mail.
func (d *Deliverer) asUser(ctx context.Context, exe string, x *delivery, f *os.File, msgPath string) outcome.Result {
	u := x.user
	if u.UID == 0 {
		return x.deliverUser(u)
	}
	step, err := encodeUser(u)
	if err != nil {
		return outcome.Tempf("4.3.0 %v", err)
	}
	// The child gets the user's ids and groups, nothing more. (It once
	// also got the spool's group, as a set-gid mail delivery agent does,
	// to create mailspool/USER and its dotlock; but the child runs the
	// user's programs and writes wherever the user's .omail says, and
	// with the group those could read and write every mailbox of a
	// Debian /var/mail, mode 660 USER:mail.) What the group was for is
	// done here, as root: prepareSpool.
	d.prepareSpool(u)
	rcpt := x.rcpt
	if x.direct {
		rcpt = `\` + rcpt // the child resolves it as the parent did
	}
	return d.child(ctx, exe, u.UID, u.GID, append([]int(nil), u.Groups...), step, f, msgPath, x.sender, rcpt)
}

// prepareSpool does, as root, what u may not do in a spool directory
// it cannot change (Debian's /var/mail: 2775 root:mail) and its
// delivery child might need: make mailspool/NAME, empty, mode 600, u's,
// when it is missing or root's (as useradd does with CREATE_MAIL_SPOOL;
// a user whose .omail sends mail elsewhere gets an empty one, which
// nothing reads), and take over a dotlock there that a dead writer or a
// crashed program left (mbox.ClearAbandoned), which the child could
// neither remove nor, for fear of the cut, append after. The child,
// which may not create a dotlock there, locks with fcntl alone. What
// fails here is logged; the child's delivery then says what it finds.
func (d *Deliverer) prepareSpool(u *User) {
	if badLocal(u.Name) {
		return // a name no path is made of
	}
	spool, err := d.Ctl.Line("mailspool")
	if err != nil {
		return
	}
	var st syscall.Stat_t
	if syscall.Stat(spool, &st) != nil {
		return
	}
	path := filepath.Join(spool, u.Name)
	if !u.Spool && !canCreateIn(&st, u) {
		// (A spool user is known because its mailbox exists.)
		if did, err := mbox.MakeOwned(path, u.UID, u.GID); err != nil {
			mbox.Logf("mailbox %s for %s: %v", path, u.Name, err)
		} else if did != "" {
			mbox.Logf("mailbox %s: %s, for %s", path, did, u.Name)
		}
	}
	// Also where u may create files: in a sticky spool (1777) it may
	// not remove root's lock. A look (lstat) when there is no lock. Not
	// in a mailbox with another name (the child refuses it): cutting it
	// back as root would cut that other file.
	var box syscall.Stat_t
	if syscall.Lstat(path, &box) == nil && box.Nlink != 1 {
		return
	}
	if _, err := mbox.ClearAbandoned(path, d.Crash); err != nil {
		mbox.Logf("mailbox %s: an abandoned dotlock not cleared: %v", path, err)
	}
}

// canCreateIn reports whether u, by its own ids, may create a file in the
// directory st.
func canCreateIn(st *syscall.Stat_t, u *User) bool {
	switch {
	case int(st.Uid) == u.UID:
		return st.Mode&0o200 != 0
	case int(st.Gid) == u.GID || slices.Contains(u.Groups, int(st.Gid)):
		return st.Mode&0o020 != 0
	}
	return st.Mode&0o002 != 0
}

// child delivers in a child process with the given ids: the resident
// one for them (resident.go), started when there is none.
func (d *Deliverer) child(ctx context.Context, exe string, uid, gid int, groups []int, step string, f *os.File, msgPath, sender, rcpt string) outcome.Result {
	r := d.residentDeliver(ctx, exe, uid, gid, groups, step, f, msgPath, sender, rcpt)
	if len(r.Forward) > 0 {
		r.Prefix = []string{"Delivered-To: " + strings.TrimPrefix(rcpt, `\`)}
	}
	return r
}
