// Package injectcmd is the body of omail-inject, the sendmail-compatible
// front end: it reads a message from a user or a script, completes its
// header, and hands it to omail-queue (or $OMAILQUEUE) by qmail-queue's
// protocol.
package injectcmd

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"strings"
	"time"

	"omail/lib/addr"
	"omail/lib/control"
	"omail/lib/envelope"
	"omail/lib/home"
	"omail/lib/qexit"
	"omail/lib/qqclient"
)

// Now is the clock for the Date: header; tests replace it.
var Now = time.Now

// Run is omail-inject's main.
func Run(args []string, env home.Env, stdin io.Reader, stdout, stderr io.Writer) int {
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "omail-inject: "+format+"\n", a...)
		return code
	}
	o, err := ParseArgs(args)
	if err != nil {
		return fail(qexit.Usage, "%v", err)
	}
	h := env.Dir()
	switch o.Mode {
	case ModeList:
		if len(o.Rcpts) > 1 {
			return fail(qexit.Usage, "usage: mailq [ENDPOINT]")
		}
		ep := ""
		if len(o.Rcpts) == 1 {
			ep = o.Rcpts[0]
		}
		if err := mailq(h, ep, Now(), stdout); err != nil {
			return fail(qexit.Temp, "cannot list the queue: %v", err)
		}
		return qexit.OK
	case ModeFlush:
		return runProgram(env, env.ProgramPath("omail-deliver"), []string{"-flush"}, stdin, stdout, stderr)
	case ModeSMTP:
		return runProgram(env, env.ProgramPath("omail-smtpd"), nil, stdin, stdout, stderr)
	case ModeAliases: // sendmail -bi or -I, or run as newaliases: what package scripts run
		return runProgram(env, env.ProgramPath("omail-deliver"), []string{"-newaliases"}, stdin, stdout, stderr)
	}

	ctl := control.New(h)
	cfg, err := loadConfig(ctl, env)
	if err != nil {
		return fail(qexit.Temp, "%v", err)
	}
	code, err := send(o, cfg, env, stdin, stderr)
	if err != nil {
		return fail(code, "%v", err)
	}
	return code
}

// runProgram runs a sibling program on our stdio, for -q and -bs. A
// local submission over -bs is trusted to relay, as sendmail -bs is.
func runProgram(env home.Env, path string, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd := exec.Command(path, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	cmd.Env = append(append([]string(nil), env...), "RELAYCLIENT=", "TCPREMOTEIP=127.0.0.1")
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ee.ExitCode() == qexit.Perm {
			return qexit.Perm
		}
		return qexit.Temp
	}
	if err != nil {
		fmt.Fprintf(stderr, "omail-inject: cannot run %s: %v\n", path, err)
		return qexit.Temp
	}
	return qexit.OK
}

// config is what send needs from control files and the environment.
type config struct {
	defaultHost string
	user        string // login name for From: and the envelope sender
	name        string // full name for From:
	host        string // MAILHOST or defaulthost
}

func loadConfig(ctl *control.Dir, env home.Env) (*config, error) {
	dh, err := ctl.Line("defaulthost")
	if err != nil {
		return nil, err
	}
	dd, err := ctl.Line("defaultdomain")
	if err != nil {
		return nil, err
	}
	// qmail adds defaultdomain to a dotless defaulthost.
	if !strings.Contains(dh, ".") && strings.Contains(dd, ".") && dd != dh {
		dh = dh + "." + dd
	}
	c := &config{defaultHost: dh, host: dh}
	for _, k := range []string{"OMAILUSER", "MAILUSER", "USER", "LOGNAME"} {
		if v := env.Get(k); v != "" {
			c.user = v
			break
		}
	}
	if c.user == "" {
		if u, err := user.Current(); err == nil {
			c.user = u.Username
		} else {
			c.user = "nobody"
		}
	}
	for _, k := range []string{"OMAILNAME", "MAILNAME", "NAME"} {
		if v := env.Get(k); v != "" {
			c.name = v
			break
		}
	}
	for _, k := range []string{"OMAILHOST", "MAILHOST"} {
		if v := env.Get(k); v != "" {
			c.host = v
			break
		}
	}
	return c, nil
}

// send reads the message, fixes its header, and queues it.
func send(o *Options, c *config, env home.Env, stdin io.Reader, stderr io.Writer) (int, error) {
	r := NewReader(stdin, o.IgnoreDots)
	fields, _, err := r.ReadHeader()
	if err != nil {
		if errors.Is(err, ErrHeaderTooBig) {
			return qexit.Perm, err
		}
		return qexit.Temp, fmt.Errorf("reading the message: %w", err)
	}
	name := c.name
	if o.FullName != "" {
		name = o.FullName
	}
	e := &envelope.Envelope{Sender: c.user + "@" + c.host}
	from := e.Sender
	if o.Sender != nil {
		s, err := senderArg(*o.Sender)
		if err != nil {
			return qexit.Perm, err
		}
		e.Sender = addr.Qualify(s, c.defaultHost)
		// As Postfix: "sendmail -f addr" names the author of a message
		// that names none. The null sender (a bounce) is nobody's
		// address, so the login name stays in From: then.
		if e.Sender != "" {
			from = e.Sender
		}
	}
	fx, err := FixHeader(fields, HeaderParams{
		UseHeaders: o.UseHeaders,
		From:       from,
		FullName:   name,
		Date:       Now(),
		MessageID:  messageID(c.defaultHost),
	})
	if err != nil {
		return qexit.Perm, err
	}
	rcpts := append([]string(nil), fx.Rcpts...)
	for _, a := range o.Rcpts {
		list, err := addr.ParseList(a)
		if err != nil {
			return qexit.Perm, fmt.Errorf("recipient %w", err)
		}
		rcpts = append(rcpts, list...)
	}
	seen := map[string]bool{}
	for _, a := range rcpts {
		a = addr.Qualify(a, c.defaultHost)
		if !seen[a] {
			seen[a] = true
			e.Rcpts = append(e.Rcpts, a)
		}
	}
	if len(e.Rcpts) == 0 {
		return qexit.Perm, errors.New("no recipients")
	}
	for _, a := range append([]string{e.Sender}, e.Rcpts...) {
		if err := envelope.CheckAddress(a); err != nil {
			return qexit.Perm, fmt.Errorf("bad address %q: %v", a, err)
		}
	}
	return queueMessage(env, e, func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 64*1024)
		for _, f := range fx.Fields {
			bw.Write(f.Raw)
		}
		bw.WriteString("\n")
		if err := r.WriteBody(bw); err != nil {
			return err
		}
		return bw.Flush()
	}, stderr)
}

// senderArg reads the value of -f (or -r) as Postfix's sendmail does: one
// address in any form a header allows ("Name <addr>", "<addr>", "addr
// (comment)"); "<>" or nothing is the null sender; anything else (two
// addresses, a control character) is an error.
func senderArg(v string) (string, error) {
	v = strings.TrimSpace(v)
	if strings.ContainsFunc(v, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
		return "", fmt.Errorf("bad sender %q: a control character", v)
	}
	list, err := addr.ParseList(v)
	if err != nil {
		return "", fmt.Errorf("bad sender: %v", err)
	}
	switch len(list) {
	case 0:
		return "", nil
	case 1:
		return list[0], nil
	}
	return "", fmt.Errorf("bad sender %q: %d addresses, not one", v, len(list))
}

// queueMessage runs the queue program with the message on its fd 0 and
// the envelope on its fd 1, and turns its exit code into ours.
func queueMessage(env home.Env, e *envelope.Envelope, writeMsg func(io.Writer) error, stderr io.Writer) (int, error) {
	c, err := qqclient.Open(env, stderr)
	if err != nil {
		return qexit.Temp, err
	}
	// qqclient.Write never fails (it reports the queue's trouble at
	// Commit), so an error here is ours: reading the caller's input.
	if err := writeMsg(c); err != nil {
		c.Abort() // the queue program sees no envelope and queues nothing
		return qexit.Temp, err
	}
	code, err := c.Commit(e)
	switch {
	case code == 0:
		return qexit.OK, nil
	case qexit.Permanent(code):
		return qexit.Perm, fmt.Errorf("queue refused the message: %v", err)
	default:
		return qexit.Temp, fmt.Errorf("queue failed: %v", err)
	}
}

// messageID makes a Message-ID unique without coordination: time, pid
// and 64 random bits.
func messageID(host string) string {
	var b [8]byte
	rand.Read(b[:])
	return fmt.Sprintf("<%d.%d.%s@%s>", Now().Unix(), os.Getpid(), hex.EncodeToString(b[:]), host)
}
