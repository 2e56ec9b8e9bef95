// Package local delivers one message to one local recipient: it resolves
// the address (virtualdomains, aliases, users/assign, the password
// database, the mail spool), reads the user's .omail instructions and
// carries them out (mbox, Maildir, program, forward). docs/local-delivery.md
// describes the rules; this package is their only implementation.
package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"omail/lib/aliases"
	"omail/lib/clock"
	"omail/lib/control"
	"omail/lib/crashpoint"
	"omail/lib/dotomail"
	"omail/lib/home"
	"omail/lib/maildir"
	"omail/lib/mbox"
	"omail/lib/outcome"
	"omail/lib/privdrop"
	"omail/lib/queue"
)

// Deliverer delivers to local recipients.
type Deliverer struct {
	Ctl  *control.Dir
	Home string // OMAIL_HOME: users/assign lives under it
	// LookupUser finds the account of a lower-cased local part (after
	// virtualdomains): users/assign, then the password database, then
	// mailspool/NAME. It returns nil, nil for nobody. New sets it to
	// Deliverer.lookupUser (users.go); tests replace it.
	LookupUser func(local string) (*User, error)
	Now        func() time.Time // mbox From_ lines, UFLINE; nil: the real clock (lib/clock)
	Path       string           // PATH for program deliveries
	// Idle is how long a resident delivery child (resident.go) may have
	// nothing to do before it is ended; zero: ResidentIdle.
	Idle time.Duration
	// Crash is the test hooks at the steps of an mbox or Maildir
	// delivery (lib/crashpoint); crashEnv hands them on to the delivery
	// children.
	Crash    crashpoint.Hook
	crashEnv []string

	residentOnce sync.Once
	residents    *residents
}

// DefaultPath is the PATH program deliveries get.
const DefaultPath = "/usr/local/bin:/usr/bin:/bin"

// New returns a Deliverer for the OMAIL_HOME of env.
func New(env home.Env) *Deliverer {
	d := &Deliverer{Ctl: control.New(env.Dir()), Home: env.Dir(), Now: time.Now, Path: DefaultPath, Crash: crashpoint.New(env)}
	d.LookupUser = d.lookupUser
	if d.Crash != nil {
		for _, k := range crashpoint.Vars {
			if v := env.Trusted(k); v != "" {
				d.crashEnv = append(d.crashEnv, k+"="+v)
			}
		}
	}
	return d
}

// delivery is one recipient in progress.
type delivery struct {
	d       *Deliverer
	ctx     context.Context
	msg     io.ReaderAt
	size    int64
	sender  string
	rcpt    string // as given, without a leading '\'
	local   string // lower case, after virtualdomains
	host    string
	direct  bool // rcpt was "\name@host": the local user name itself (an alias's \user)
	virtual bool // host is a virtual domain: local carries its prefix
	alias   []aliases.Target
	user    *User
	prefix  []string // Return-Path, Delivered-To
	at      attempt  // the delivery id and whether an earlier copy may exist (once.go)
	// spoolBox is mailspool/USER when the instructions are the spool
	// mailbox (no .omail, no defaultdelivery): it must be the user's.
	spoolBox string
}

// Deliver delivers the message in msgPath (an immutable queue file, LF
// line endings) from sender to rcpt (an address in a local or virtual
// domain), in this process and with its privileges.
func (d *Deliverer) Deliver(ctx context.Context, msgPath, sender, rcpt string) outcome.Result {
	if r := checkAddresses(sender, rcpt); r != nil {
		return *r
	}
	f, size, res := openMessage(ctx, msgPath)
	if res != nil {
		return *res
	}
	defer f.Close()
	ctx, _ = attemptOf(ctx, msgPath, rcpt)
	r := d.deliverFrom(ctx, f, size, sender, rcpt)
	d.Crash.At("local-done")
	return r
}

// openMessage opens the queue file msgPath and gives the message's size
// (messageSize: ctx may say it is the start of the file); failing that,
// the temporary failure to report.
func openMessage(ctx context.Context, msgPath string) (*os.File, int64, *outcome.Result) {
	f, err := os.Open(msgPath)
	if err != nil {
		r := outcome.Tempf("4.3.0 cannot open message: %v", err)
		return nil, 0, &r
	}
	size, r := messageSize(ctx, f)
	if r != nil {
		f.Close()
		return nil, 0, r
	}
	return f, size, nil
}

func (d *Deliverer) deliverFrom(ctx context.Context, msg io.ReaderAt, size int64, sender, rcpt string) outcome.Result {
	x, res := d.start(ctx, msg, size, sender, rcpt)
	if res != nil {
		return *res
	}
	if x.alias != nil {
		return x.deliverAlias()
	}
	return x.deliverUser(x.user)
}

// start resolves the recipient and checks for loops.
func (d *Deliverer) start(ctx context.Context, msg io.ReaderAt, size int64, sender, rcpt string) (*delivery, *outcome.Result) {
	x := &delivery{d: d, ctx: ctx, msg: msg, size: size, sender: sender}
	x.at, _ = ctx.Value(attemptKey{}).(attempt)
	if res := x.resolve(rcpt, true); res != nil {
		return nil, res
	}
	if res := x.checkLoop(); res != nil {
		return nil, res
	}
	return x, nil
}

// checkAddresses refuses what must not come from outside: control
// characters anywhere (they would break the header lines we add), and a
// recipient starting with '\', which inside this package means "the
// user of that name, aliases skipped" (the \user of an alias).
func checkAddresses(sender, rcpt string) *outcome.Result {
	bad := func(s string) bool {
		return strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f })
	}
	if bad(sender) {
		r := outcome.Permf("5.1.7 bad sender address %q", sender)
		return &r
	}
	if bad(rcpt) || strings.HasPrefix(rcpt, `\`) {
		r := outcome.Permf("5.1.3 bad recipient address %q", rcpt)
		return &r
	}
	return nil
}

// badLocal reports a local part that could become something other than a
// name if it reached a path or a command line.
func badLocal(s string) bool {
	return s == "" || s[0] == '.' || strings.ContainsFunc(s, func(r rune) bool {
		return r <= ' ' || r == 0x7f || r == '/'
	})
}

// resolve works out the local part, the host and the alias or user of
// rcpt. Without lookup it stops before aliases and users: a caller that
// already knows the user (the parent of a delivery child) sets x.user.
//
// An rcpt "\name@host" (only ever made here, for an alias's \name
// target, and handed to a delivery child) is the local user name
// itself: the host is not looked up in locals or virtualdomains, no
// prefix is added, and aliases are skipped.
func (x *delivery) resolve(rcpt string, lookup bool) *outcome.Result {
	d := x.d
	if strings.HasPrefix(rcpt, `\`) {
		rcpt, x.direct = rcpt[1:], true
	}
	x.rcpt = rcpt
	local, host := rcpt, ""
	if i := strings.LastIndexByte(rcpt, '@'); i >= 0 {
		local, host = rcpt[:i], rcpt[i+1:]
	}
	if badLocal(local) {
		r := outcome.Permf("5.1.3 bad local part: %q", local)
		return &r
	}
	if host == "" {
		me, err := d.Ctl.Me()
		if err != nil {
			r := outcome.Tempf("4.3.5 %v", err)
			return &r
		}
		host = me
	}
	x.host = control.NormalizeDomain(host)
	x.local = aliases.Fold(local)
	if !x.direct {
		if r := x.domain(); r != nil {
			return r
		}
	}
	x.prefix = []string{"Return-Path: <" + x.sender + ">", "Delivered-To: " + x.rcpt}
	if !lookup {
		return nil
	}
	if !x.direct {
		t, ok, err := d.lookupAlias(x.local)
		if err != nil {
			r := outcome.Tempf("4.3.5 aliases: %v", err)
			return &r
		}
		if ok {
			x.alias = t
			return nil
		}
	}
	lookupUser := d.LookupUser
	if lookupUser == nil {
		lookupUser = d.lookupUser
	}
	u, err := lookupUser(x.local)
	if err != nil {
		r := outcome.Tempf("4.3.0 looking up %s: %v", x.local, err)
		return &r
	}
	if u == nil {
		r := outcome.Permf("5.1.1 no such user: %s", x.local)
		return &r
	}
	if badLocal(u.Name) {
		r := outcome.Tempf("4.3.5 unusable account name %q for %s", u.Name, x.local)
		return &r
	}
	x.user = u
	return nil
}

// domain checks that x.host is a local or virtual domain, and for a
// virtual one puts its prefix in front of x.local.
func (x *delivery) domain() *outcome.Result {
	locals, err := x.d.Ctl.DomainSet("locals")
	if err != nil {
		r := outcome.Tempf("4.3.5 %v", err)
		return &r
	}
	if locals.Has(x.host) {
		return nil
	}
	vd, err := x.d.Ctl.DomainMap("virtualdomains")
	if err != nil {
		r := outcome.Tempf("4.3.5 %v", err)
		return &r
	}
	prefix, _, ok := vd.Lookup(x.host)
	if !ok || prefix == "" {
		r := outcome.Permf("5.1.2 %s is not a local domain", x.host)
		return &r
	}
	x.local, x.virtual = aliases.Fold(prefix)+"-"+x.local, true
	if badLocal(x.local) {
		r := outcome.Permf("5.1.3 bad local part: %q", x.local)
		return &r
	}
	return nil
}

// AliasesFile is the aliases file, in the control directory; AliasesCDB
// its compiled form, used instead of it when present (keys: the names in
// lower case; values: the whole entry, "name: target, ...").
const (
	AliasesFile = "aliases"
	AliasesCDB  = "aliases.cdb"
)

// lookupAlias finds the alias of a lower-case name (lib/aliases: the cdb
// or the file, :include: expanded, bad entries deferred by name).
func (d *Deliverer) lookupAlias(name string) ([]aliases.Target, bool, error) {
	return aliases.LookupIn(d.Ctl, name)
}

// aliasOwner returns the account that owns the aliases file: alias
// program and file deliveries run with its ids, its primary gid and its
// groups, as a user's do (never the file's group: `chown alias
// control/aliases` leaves that root's). A file of root's, of a uid no
// account has, or of an account whose primary group is root's is
// refused, with the reason.
func (d *Deliverer) aliasOwner() (privdrop.IDs, error) {
	var st syscall.Stat_t
	path := d.Ctl.File(AliasesFile)
	if err := syscall.Stat(path, &st); err != nil {
		return privdrop.IDs{}, err
	}
	if st.Uid == 0 {
		return privdrop.IDs{}, errors.New("control/aliases is owned by root; its program and file deliveries run as its owner, never as root: chown it")
	}
	ids, err := privdrop.LookupID(int(st.Uid))
	if err != nil {
		return privdrop.IDs{}, fmt.Errorf("control/aliases: its owner's account: %v (give uid %d an account in /etc/passwd, or chown control/aliases to a user made for it)", err, st.Uid)
	}
	return ids, nil
}

func (x *delivery) reader() *io.SectionReader { return io.NewSectionReader(x.msg, 0, x.size) }

// qualify completes an address without a domain with control/me.
func (x *delivery) qualify(a string) (string, error) {
	if strings.Contains(a, "@") {
		return a, nil
	}
	me, err := x.d.Ctl.Me()
	return a + "@" + me, err
}

// aliasWays are how walkAlias delivers what it does not forward. In
// this process (deliverAlias) a \user target is a nested delivery here
// and the program and file targets run here; as root (deliverAliasAsRoot)
// each \user target is a delivery as that user and the program and file
// targets run in one child as the owner of control/aliases.
type aliasWays struct {
	user func(step, rcpt string) outcome.Result // rcpt is "\name@host"; step names it in delivery ids
	// files delivers the alias's program and file targets, in order;
	// nil when it has none. A program's exit 99 skips the rest of them.
	files func() outcome.Result
}

// walkAlias carries out x.alias, one way for every caller: addresses are
// collected for forwarding, \user targets delivered in the order given,
// then the program and file targets together. The first failure is the
// recipient's outcome. The report lists each target's account once
// ("delivered: mbox /var/mail/bob; maildir /srv/a/; forward x@y"): a
// nested delivery's own "delivered: " is dropped.
func (x *delivery) walkAlias(ways aliasWays) outcome.Result {
	var done, fwd []string
	for i, t := range x.alias {
		switch t.Kind {
		case aliases.Forward:
			a, err := x.qualify(t.Value)
			if err != nil {
				return outcome.Tempf("4.3.5 %v", err)
			}
			fwd = append(fwd, a)
		case aliases.User:
			host, err := x.userHost()
			if err != nil {
				return outcome.Tempf("4.3.5 %v", err)
			}
			r := ways.user("u"+strconv.Itoa(i), `\`+t.Value+"@"+host)
			if r.Status != outcome.OK {
				return r
			}
			fwd = append(fwd, r.Forward...)
			done = append(done, strings.TrimPrefix(r.Text, "delivered: "))
		}
	}
	if ways.files != nil {
		r := ways.files()
		if r.Status != outcome.OK {
			return r
		}
		done = append(done, strings.TrimPrefix(r.Text, "delivered: "))
	}
	return x.ok(done, fwd)
}

// userHost is the domain of an alias's \name target, in the address
// its delivery carries (Delivered-To:, RECIPIENT): the alias's own
// domain when that is a local one; control/me when it is a virtual
// domain, where name@domain would be another address (prefix-name).
func (x *delivery) userHost() (string, error) {
	if !x.virtual {
		return x.host, nil
	}
	return x.d.Ctl.Me()
}

// deliverAlias carries out an alias in this process, as this user.
func (x *delivery) deliverAlias() outcome.Result {
	ways := aliasWays{user: func(step, rcpt string) outcome.Result {
		return x.d.deliverFrom(withStep(x.ctx, step), x.msg, x.size, x.sender, rcpt)
	}}
	if files := fileTargets(x.alias); len(files) > 0 {
		// Refused before anything is delivered.
		if r := refuseAliasFilesAsRoot(x.local); r != nil {
			return *r
		}
		ways.files = func() outcome.Result {
			// The same ids as in the "aliasfiles" child of a root
			// omail-deliver (deliverAliasAsRoot).
			y := *x
			y.ctx = withStep(x.ctx, "f")
			y.at, _ = y.ctx.Value(attemptKey{}).(attempt)
			return y.deliverFiles(files)
		}
	}
	return x.walkAlias(ways)
}

// refuseAliasFilesAsRoot: only a process running as the owner of
// control/aliases may run an alias's programs and write its files
// (DeliverAs starts one), never root itself.
func refuseAliasFilesAsRoot(name string) *outcome.Result {
	if geteuid() != 0 {
		return nil
	}
	r := outcome.Tempf("4.3.0 alias %s: program and file deliveries run as the owner of control/aliases, never as root", name)
	return &r
}

// deliverFiles carries out an alias's program and file targets in this
// process: in deliverAlias, or in the "aliasfiles" child of a root
// omail-deliver.
func (x *delivery) deliverFiles(files []aliases.Target) outcome.Result {
	if r := refuseAliasFilesAsRoot(x.local); r != nil {
		return *r
	}
	ins := make([]dotomail.Instruction, len(files))
	for i, t := range files {
		ins[i] = dotomail.Instruction{Kind: aliasKind(t.Kind), Value: t.Value}
	}
	return x.run(ins, nil)
}

// fileTargets are the program and file targets of an alias.
func fileTargets(ts []aliases.Target) []aliases.Target {
	var out []aliases.Target
	for _, t := range ts {
		if t.Kind != aliases.Forward && t.Kind != aliases.User {
			out = append(out, t)
		}
	}
	return out
}

func aliasKind(k aliases.Kind) dotomail.Kind {
	switch k {
	case aliases.Program:
		return dotomail.Program
	case aliases.Mbox:
		return dotomail.Mbox
	case aliases.Maildir:
		return dotomail.Maildir
	}
	return dotomail.Forward
}

func (x *delivery) ok(done, fwd []string) outcome.Result {
	for _, a := range fwd {
		done = append(done, "forward "+a)
	}
	r := outcome.Result{Status: outcome.OK, Text: outcome.Line("delivered: " + strings.Join(done, "; ")), Forward: fwd}
	if len(fwd) > 0 {
		r.Prefix = []string{"Delivered-To: " + x.rcpt}
	}
	return r
}

// mayDeliverAs says whether this process may write files or run programs
// for u: as an ordinary user always (it delivers as itself); as root only
// for root itself and for spool users whose mailbox root owns, never
// into an ordinary user's files.
func mayDeliverAs(u *User) error {
	if geteuid() != 0 {
		return nil
	}
	if u.UID != 0 {
		return fmt.Errorf("running as root: %s (uid %d) must be delivered by a child with its uid (DeliverAs)", u.Name, u.UID)
	}
	if u.Name != "root" && !u.Spool {
		return fmt.Errorf("%s has uid 0 but is not root: refusing to deliver as root", u.Name)
	}
	return nil
}

func (x *delivery) deliverUser(u *User) outcome.Result {
	if err := mayDeliverAs(u); err != nil {
		return outcome.Tempf("4.3.0 %v", err)
	}
	ins, defaultPart, res := x.instructions(u)
	if res != nil {
		return *res
	}
	return x.run(ins, &userEnv{u: u, def: defaultPart})
}

// run carries out instructions in order, for a user (ue) or for an
// alias's program and file targets (ue nil): addresses are collected
// for forwarding, the rest delivered; the first failure is the outcome,
// and a program's exit 99 skips the instructions after it.
func (x *delivery) run(ins []dotomail.Instruction, ue *userEnv) outcome.Result {
	var done, fwd []string
	for i, in := range ins {
		if in.Kind == dotomail.Forward {
			a, err := x.qualify(in.Value)
			if err != nil {
				return outcome.Tempf("4.3.5 %v", err)
			}
			fwd = append(fwd, a)
			continue
		}
		text, stop, r := x.do(i, in, ue)
		if r != nil {
			return *r
		}
		done = append(done, text)
		if stop {
			break
		}
	}
	return x.ok(done, fwd)
}

// instructions finds what to do for u: its .omail file, or the default.
func (x *delivery) instructions(u *User) (ins []dotomail.Instruction, defaultPart string, res *outcome.Result) {
	spool, err := x.d.Ctl.Line("mailspool")
	if err != nil {
		r := outcome.Tempf("4.3.5 %v", err)
		return nil, "", &r
	}
	spoolBox := []dotomail.Instruction{{Kind: dotomail.Mbox, Value: filepath.Join(spool, u.Name)}}
	x.spoolBox = spoolBox[0].Value
	if u.Home == "" {
		if u.Ext != "" {
			r := outcome.Permf("5.1.1 no mailbox here by that name: %s", x.local)
			return nil, "", &r
		}
		return spoolBox, "", nil
	}
	st, err := os.Stat(u.Home)
	if err != nil {
		r := outcome.Tempf("4.2.1 home directory of %s: %v", u.Name, err)
		return nil, "", &r
	}
	if st.Mode().Perm()&0o002 != 0 {
		r := outcome.Tempf("4.7.0 home directory %s is writable by others", u.Home)
		return nil, "", &r
	}
	ins, defaultPart, found, err := dotFile(u)
	if err != nil {
		r := outcome.Tempf("4.7.0 %v", err)
		return nil, "", &r
	}
	if !found && u.Ext != "" {
		r := outcome.Permf("5.1.1 no mailbox here by that name: %s", x.local)
		return nil, "", &r
	}
	if len(ins) > 0 {
		return ins, defaultPart, nil
	}
	lines, err := x.d.Ctl.List("defaultdelivery")
	if err != nil {
		r := outcome.Tempf("4.3.5 %v", err)
		return nil, "", &r
	}
	for i, l := range lines {
		in, ok, err := dotomail.ParseLine(l, i+1)
		if err != nil {
			r := outcome.Tempf("4.3.5 control/defaultdelivery: %v", err)
			return nil, "", &r
		}
		if ok {
			ins = append(ins, in)
		}
	}
	if len(ins) == 0 {
		return spoolBox, defaultPart, nil
	}
	return ins, defaultPart, nil
}

// dotFile reads the instruction file for u. For an extension "a-b" it
// tries .omail-a-b, .omail-a-default, .omail-default, as qmail; '.' in
// the extension is ':' in file names, so that no extension can name a
// path outside the home. defaultPart is what "default" stood for, from
// the extension as it is, dots kept (qmail-local's DEFAULT: ezmlm's
// "list-subscribe-joe=example.org" gives "subscribe-joe=example.org").
func dotFile(u *User) (ins []dotomail.Instruction, defaultPart string, found bool, err error) {
	var names, defs []string
	if u.Ext == "" {
		names, defs = []string{".omail"}, []string{""}
	} else {
		orig := aliases.LowerASCII(u.Ext)
		ext := strings.ReplaceAll(orig, ".", ":") // the same length: offsets agree
		names, defs = append(names, ".omail"+u.Dash+ext), append(defs, "")
		for i := len(ext) - 1; i >= 0; i-- {
			if ext[i] == '-' {
				names, defs = append(names, ".omail"+u.Dash+ext[:i+1]+"default"), append(defs, orig[i+1:])
			}
		}
		names, defs = append(names, ".omail"+u.Dash+"default"), append(defs, orig)
	}
	for i, n := range names {
		if strings.Contains(n, "/") {
			continue
		}
		path := filepath.Join(u.Home, n)
		// Not blocking, as qmail's open_read: a FIFO would hold the
		// open until a writer came, beyond the reach of a cancellation.
		f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, "", false, fmt.Errorf("%s: %v", path, err)
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return nil, "", false, fmt.Errorf("%s: %v", path, err)
		}
		if !st.Mode().IsRegular() {
			return nil, "", false, fmt.Errorf("%s is not a regular file", path)
		}
		if st.Mode().Perm()&0o002 != 0 {
			return nil, "", false, fmt.Errorf("%s is writable by others", path)
		}
		ins, err := dotomail.Parse(f)
		if err != nil {
			return nil, "", false, fmt.Errorf("%s: %v", path, err)
		}
		return ins, defs[i], true, nil
	}
	return nil, "", false, nil
}

// do carries out one file or program instruction, the i-th. stop is a
// program's "delivered, ignore the rest" (exit 99).
func (x *delivery) do(i int, in dotomail.Instruction, ue *userEnv) (text string, stop bool, res *outcome.Result) {
	path := in.Value
	if in.Kind != dotomail.Program && !filepath.IsAbs(path) {
		if ue == nil || ue.u.Home == "" {
			r := outcome.Tempf("4.3.5 relative path %q without a home", path)
			return "", false, &r
		}
		path = filepath.Join(ue.u.Home, path)
	}
	switch in.Kind {
	case dotomail.Mbox:
		var spoolUser *User
		if ue != nil && path == x.spoolBox {
			spoolUser = ue.u
		}
		if err := x.mbox(path, x.at.token(i), spoolUser); err != nil {
			var no *spoolBoxError
			if errors.As(err, &no) {
				r := outcome.Tempf("4.2.0 %v", err)
				return "", false, &r
			}
			r := outcome.Tempf("4.3.0 mbox %s: %v", path, err)
			return "", false, &r
		}
		return "mbox " + path, false, nil
	case dotomail.Maildir:
		if err := x.maildir(path, x.at.token(i)); err != nil {
			r := outcome.Tempf("4.3.0 %v", err)
			return "", false, &r
		}
		return "maildir " + path, false, nil
	case dotomail.Program:
		return x.program(in.Value, ue, x.at.token(i))
	case dotomail.Discard: // a .omail of comments only, as qmail
		return "discarded: instruction file holds only comments", false, nil
	}
	r := outcome.Tempf("4.3.5 unknown instruction %v", in.Kind)
	return "", false, &r
}

// mbox appends the message to the mbox at path, exactly once for token:
// the copy carries it in an X-Omail-Delivery: line, and unless this is
// the message's first attempt, a copy made before is looked for first
// (mbox.Appender.Recover; once.go).
//
// spoolUser, when not nil: path is that user's mailbox in the mail
// spool, checked first (checkSpoolBox).
func (x *delivery) mbox(path, token string, spoolUser *User) error {
	if spoolUser != nil {
		// Also before the locks: taking over a dead writer's dotlock
		// cuts the file back.
		if f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0); err == nil {
			err := checkSpoolBox(f, path, spoolUser.UID, os.Geteuid())
			f.Close()
			if err != nil {
				return err
			}
		}
	}
	a, err := mbox.OpenHooked(path, x.d.Crash)
	if err != nil {
		return err
	}
	if spoolUser != nil {
		if err := checkSpoolBox(a.File(), path, spoolUser.UID, os.Geteuid()); err != nil {
			a.Abort()
			return err
		}
	}
	x.d.Crash.At("mbox-locked")
	marker := MarkerHeader + ": " + token
	prefix := append(x.prefix[:len(x.prefix):len(x.prefix)], marker)
	if !x.at.fresh {
		found, err := a.Recover(marker, x.sender, prefix, x.msg, x.size)
		if err != nil {
			a.Abort()
			return err
		}
		if found {
			return a.Commit()
		}
	}
	if err := a.Add(x.sender, prefix, x.reader(), clock.Now(x.d.Now)); err != nil {
		a.Abort()
		return err
	}
	if err := a.Commit(); err != nil {
		return err
	}
	x.d.Crash.At("mbox-done")
	return nil
}

// spoolBoxError is a spool mailbox refused: a temporary failure (4.2.0)
// until someone looks at it.
type spoolBoxError struct{ text string }

func (e *spoolBoxError) Error() string { return e.text }

// checkSpoolBox refuses the open mailbox f, a user's mailbox in the mail
// spool (at path), unless it is owned by its user (uid) or by this
// process (euid), and has one name. The owner: in a spool open to all,
// anyone could have made it first, to read what is appended (Postfix's
// strict_mailbox_ownership). As root, a child delivers with the user's
// uid, and root only to accounts of uid 0; an omail that is not root
// delivers as itself, to boxes the users own (a Debian USER:mail 660)
// or that it made itself. One name: in a spool open to all (1777),
// without the kernel's protected_hardlinks, another user may have made
// it a hard link to a file of the user's (~/.profile), before the user
// had a mailbox, and have mail appended to that file (Postfix refuses
// this too; lookupSpool refuses it for a spool user).
func checkSpoolBox(f *os.File, path string, uid, euid int) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("mailbox %s: %v", path, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("mailbox %s: no owner", path)
	}
	if owner := int(st.Uid); owner != uid && owner != euid {
		who := "uid " + strconv.Itoa(owner)
		if u, err := user.LookupId(strconv.Itoa(owner)); err == nil {
			who += " (" + u.Username + ")"
		}
		also := ""
		if euid != uid {
			also = fmt.Sprintf(" nor by omail's (uid %d)", euid)
		}
		return &spoolBoxError{fmt.Sprintf("mailbox %s is owned by %s, not by its user (uid %d)%s", path, who, uid, also)}
	}
	if st.Nlink != 1 {
		return &spoolBoxError{fmt.Sprintf("mailbox %s has %d links, not one: it may be a hard link to another file", path, st.Nlink)}
	}
	return nil
}

// MarkerHeader is the header line that names a delivery's mbox copy.
const MarkerHeader = "X-Omail-Delivery"

// maildir delivers the message into the Maildir at path, exactly once
// for token: the file's name is made from it, and unless this is the
// message's first attempt, new/ and cur/ are looked at first.
func (x *delivery) maildir(path, token string) error {
	if _, err := maildir.DeliverNamed(path, maildirName(token), !x.at.fresh, x.prefix, x.reader(), x.d.Crash); err != nil {
		return err
	}
	x.d.Crash.At("maildir-done")
	return nil
}

// maildirName is the Maildir file name of a delivery: the queue id's
// seconds, microseconds, pid and counter where Deliver's unique names
// have the delivery's, then E and 64 bits of a hash of the token (so
// one name per recipient and target), then the host.
func maildirName(token string) string {
	h := sha256.Sum256([]byte(token))
	e := "E" + hex.EncodeToString(h[:8])
	f := strings.SplitN(token, ".", 5)
	if len(f) == 5 && queue.ValidID(strings.Join(f[:4], ".")) {
		secs, _ := strconv.ParseInt(f[0], 10, 64)
		ns, _ := strconv.ParseInt(f[1], 10, 64)
		return maildir.NameFor(secs, fmt.Sprintf("M%06dP%sQ%s%s", ns/1000, f[2], f[3], e))
	}
	// Not a queue file (a by-hand "omail-deliver -local"): the hash alone.
	return maildir.NameFor(0, e)
}

// geteuid is os.Geteuid; tests running as root pretend to be an ordinary
// user with it.
var geteuid = os.Geteuid
