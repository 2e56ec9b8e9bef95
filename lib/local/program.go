package local

import (
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"omail/lib/clock"
	"omail/lib/mbox"
	"omail/lib/outcome"
	"omail/lib/qexit"
)

// userEnv is what a program delivery needs to know about its user.
type userEnv struct {
	u   *User
	def string // the part of the extension that "default" matched
}

// programEnv builds qmail-command(8)'s environment. Addresses reach the
// program only here, never in its command line.
func (x *delivery) programEnv(ue *userEnv) []string {
	var u User
	if ue != nil {
		u = *ue.u
	}
	homeDir := u.Home
	if homeDir == "" {
		homeDir = "/"
	}
	env := []string{
		"PATH=" + x.d.path(),
		"SHELL=/bin/sh",
		"HOME=" + homeDir,
		"USER=" + u.Name,
		"SENDER=" + x.sender,
		"NEWSENDER=" + x.sender,
		"RECIPIENT=" + x.local + "@" + x.host,
		"LOCAL=" + x.local,
		"HOST=" + x.host,
		"EXT=" + u.Ext,
		"DEFAULT=",
		"DTLINE=Delivered-To: " + x.rcpt + "\n",
		"RPLINE=Return-Path: <" + x.sender + ">\n",
		"UFLINE=From " + mbox.FromSender(x.sender) + " " + clock.Now(x.d.Now).Format("Mon Jan _2 15:04:05 2006") + "\n",
	}
	if ue != nil {
		env[len(env)-4] = "DEFAULT=" + ue.def
	}
	// EXT2..EXT4: the extension without its first one to three
	// dash-separated parts ("" when there are fewer); HOST2..HOST4: the
	// host without its last one to three dot-separated parts, as
	// qmail-local: with no further dot the previous value is kept
	// (test.example: HOST2, HOST3 and HOST4 are all "test").
	ext := u.Ext
	for i := 2; i <= 4; i++ {
		if j := strings.IndexByte(ext, '-'); j >= 0 {
			ext = ext[j+1:]
		} else {
			ext = ""
		}
		env = append(env, "EXT"+string(rune('0'+i))+"="+ext)
	}
	host := x.host
	for i := 2; i <= 4; i++ {
		if j := strings.LastIndexByte(host, '.'); j >= 0 {
			host = host[:j]
		}
		env = append(env, "HOST"+string(rune('0'+i))+"="+host)
	}
	return env
}

func (d *Deliverer) path() string {
	if d.Path != "" {
		return d.Path
	}
	return DefaultPath
}

// programWaitDelay is how long a program's output is read after it has
// exited, while something it left running holds it open.
var programWaitDelay = 5 * time.Second

// ProgramOutput bounds how much of a program's output is kept for the
// delivery report (and so for a bounce).
const ProgramOutput = 1000

// program runs cmd with /bin/sh -c, the message on stdin, cwd the home.
// Exit 0: delivered; 99: delivered, ignore the rest of the instructions;
// 100 and the codes qmail-command(8) also calls hard errors (64, 65,
// 70, 76, 77, 78, 112):
// permanent failure; anything else, a signal included: temporary.
//
// A program cannot be delivered to exactly once: a crash between its exit
// and the queue's record runs it again. DELIVERY_ID in its environment,
// the same at every attempt, lets it see a repeat.
func (x *delivery) program(cmdline string, ue *userEnv, token string) (text string, stop bool, res *outcome.Result) {
	cmd := exec.CommandContext(x.ctx, "/bin/sh", "-c", cmdline)
	cmd.Env = append(x.programEnv(ue), "DELIVERY_ID="+token)
	cmd.Dir = "/"
	if ue != nil && ue.u.Home != "" {
		cmd.Dir = ue.u.Home
	}
	cmd.Stdin = x.reader()
	out := &limited{max: ProgramOutput}
	cmd.Stdout, cmd.Stderr = out, out
	// The program and anything it starts are one process group, killed
	// together when the delivery is cancelled. When this process dies
	// (kill -9, a crash), the kernel kills the program (Pdeathsig): an
	// orphan finishing a delivery behind the next attempt's back would
	// make it twice. (The kernel ties Pdeathsig to the thread that
	// forked; Go ends a thread only when a goroutine locked to it exits,
	// which nothing in omail-deliver does.)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = programWaitDelay
	err := cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) && cmd.ProcessState != nil {
		// The program exited, but something it left running in the
		// background still holds its output: the exit status decides,
		// as qmail's. A deferral would run the program again.
		err = nil
		if !cmd.ProcessState.Success() {
			err = &exec.ExitError{ProcessState: cmd.ProcessState}
		}
	}
	said := strings.TrimSpace(out.String())
	desc := "program"
	if said != "" {
		desc += ": " + said
	}
	if err == nil {
		return desc, false, nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		switch code := ee.ExitCode(); code {
		case 99:
			return desc, true, nil
		case qexit.Perm: // qmail-command(8)'s "permanent failure", like our own 100
			r := outcome.Permf("5.2.0 program said: %s", orDefault(said, "exit 100"))
			return "", false, &r
		case 64, 65, 70, 76, 77, 78, 112:
			// qmail-command(8): "currently 64, 65, 70, 76, 77, 78, and
			// 112 are considered hard errors" (sysexits' EX_USAGE,
			// EX_DATAERR, EX_SOFTWARE, EX_PROTOCOL, EX_NOPERM,
			// EX_CONFIG; procmail and maildrop use them).
			r := outcome.Permf("5.2.0 program exit %d: %s", code, orDefault(said, "no output"))
			return "", false, &r
		case -1:
			r := outcome.Tempf("4.3.0 program killed: %v %s", err, said)
			return "", false, &r
		default:
			r := outcome.Tempf("4.3.0 program exit %d: %s", code, orDefault(said, "no output"))
			return "", false, &r
		}
	}
	r := outcome.Tempf("4.3.0 program: %v", err)
	return "", false, &r
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// limited keeps the first max bytes written to it and drops the rest.
type limited struct {
	max int
	b   []byte
}

func (l *limited) Write(p []byte) (int, error) {
	if room := l.max - len(l.b); room > 0 {
		l.b = append(l.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (l *limited) String() string { return string(l.b) }
