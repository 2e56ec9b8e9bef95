// Package delivercmd is the body of omail-deliver, the queue manager:
//
//	omail-deliver          run in the foreground (supervise); SIGALRM
//	                       retries everything now, SIGHUP rereads the
//	                       control files, SIGTERM finishes the deliveries in
//	                       progress and exits 0.
//	omail-deliver -flush   one pass over every message now, then exit.
//	omail-deliver -init    create the queue under OMAIL_HOME and exit.
//	omail-deliver -hold|-release|-delete|-retry ID... | -all | -from ADDR | -to ADDR
//	                       queue administration (admin.go).
//	omail-deliver -local -resident
//	                       internal: the long-lived local delivery child a
//	                       root omail-deliver keeps per user in use
//	                       (lib/local/resident.go).
//	omail-deliver -local SENDER RCPT MSGPATH
//	                       one local delivery in this process, as the
//	                       calling user (by hand).
//	omail-deliver -remote  internal: one SMTP delivery in an unprivileged
//	                       child (see remotechild.go).
//	omail-deliver -dkimkeygen [-ed25519 | -rsa] DOMAIN SELECTOR
//	                       write a DKIM key under control/dkim/ and print
//	                       its TXT record (dkimkeygen.go).
//	omail-deliver -newaliases (or run as newaliases)
//	                       compile control/aliases into aliases.cdb.
//	omail-deliver -newu    compile users/assign into users/assign.cdb
//	                       (newaliases.go).
package delivercmd

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"omail/lib/control"
	"omail/lib/crashpoint"
	"omail/lib/home"
	"omail/lib/local"
	"omail/lib/qexit"
	"omail/lib/qmanager"
	"omail/lib/queue"
	"omail/lib/safefile"
)

// Run is omail-deliver's main.
func Run(args []string, env home.Env, stdin io.Reader, stdout, stderr io.Writer) int {
	mode := ""
	if len(args) > 1 {
		mode = args[1]
	}
	h := env.Dir()
	if len(args) > 0 && filepath.Base(args[0]) == "newaliases" {
		// As sendmail's: a link named newaliases rebuilds the aliases.
		return runNewaliases(args[1:], h, stdout, stderr)
	}
	switch mode {
	case "-newaliases":
		return runNewaliases(args[2:], h, stdout, stderr)
	case "-newu":
		return runNewu(args[2:], h, stdout, stderr)
	case "-init":
		if err := queue.New(h).Init(); err != nil {
			fmt.Fprintf(stderr, "omail-deliver: cannot create the queue: %v\n", err)
			return qexit.Temp
		}
		return qexit.OK
	case "-local":
		return runLocalChild(args[2:], env, stdin, stdout, stderr)
	case "-remote":
		return runRemoteChild(env, stdin, stdout, stderr)
	case "-dkimkeygen":
		return runDKIMKeygen(args[2:], env, stdout, stderr)
	case "-hold", "-release", "-delete", "-retry":
		return runAdmin(adminModes[mode], args[2:], h, env, stderr)
	case "", "-flush":
	default:
		fmt.Fprintf(stderr, "omail-deliver: usage: omail-deliver [-flush | -init | -hold | -release | -delete | -retry ID... | -all | -from ADDR | -to ADDR | -dkimkeygen [-ed25519 | -rsa] DOMAIN SELECTOR | -newaliases | -newu]\n")
		return qexit.Usage
	}

	// The daemon and -flush pass on none of the descriptors they
	// inherited without close-on-exec (a cron wrapper's `exec
	// 9</etc/shadow`, a lock's descriptor): not to the delivery children,
	// nor through them to users' programs. (The -local and -remote
	// children read theirs: not for them.)
	if err := local.CloseOnExec(3); err != nil {
		fmt.Fprintf(stderr, "omail-deliver: %v\n", err)
		return qexit.Temp
	}

	// Every signal the daemon acts on is caught before anything else, so
	// that none of them kills a start-up or a -flush in the middle of a
	// delivery: a SIGHUP from a closing terminal or an early `svc -h`,
	// an early SIGALRM. A -flush has nothing to reload or wake; it goes on.
	alarm, reload := relay(syscall.SIGALRM), relay(syscall.SIGHUP)
	ctx, hard, unnotify := stopSignals(stderr)
	defer unnotify()

	q := queue.New(h)
	q.Crash = crashpoint.New(env) // tests kill it between the steps of taking a message in
	if err := q.Check(); err != nil {
		fmt.Fprintf(stderr, "omail-deliver: queue not usable (run omail-deliver -init): %v\n", err)
		return qexit.Temp
	}
	ctl := control.New(h)
	m := &qmanager.Manager{Q: q, Ctl: ctl, Log: stderr, Home: h}
	if err := m.Load(); err != nil {
		fmt.Fprintf(stderr, "omail-deliver: %v\n", err)
		return qexit.Temp
	}
	t, err := transports(h, ctl, env, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "omail-deliver: %v\n", err)
		return qexit.Temp
	}
	m.T = t
	m.Hard = hard
	if mode == "-flush" {
		if err := m.Flush(ctx); err != nil {
			fmt.Fprintf(stderr, "omail-deliver: flush incomplete: %v\n", err)
			return qexit.Temp
		}
		return qexit.OK
	}

	sig, err := signals(q, alarm, reload)
	if err != nil {
		fmt.Fprintf(stderr, "omail-deliver: %v\n", err)
		return qexit.Temp
	}
	m.Log.Write([]byte("status: omail-deliver started\n"))
	// After the started line, which supervisors and tests wait for first.
	if safefile.SyncsWholeFS(q.Dir) {
		fmt.Fprintf(stderr, "warning: the queue %s is on a file system without a journal, where fsync does not make a new file durable: every commit syncs the whole file system (syncfs), which is slower; a journal gives the speed back (docs/RELIABILITY.md)\n", q.Dir)
	}
	if err := m.Run(ctx, sig); err != nil {
		fmt.Fprintf(stderr, "omail-deliver: %v\n", err)
		return qexit.Temp
	}
	fmt.Fprintln(stderr, "status: omail-deliver exiting")
	return qexit.OK
}

// signals turns the trigger fifo, with SIGALRM and SIGHUP (relayed),
// into the channels the manager waits on.
func signals(q *queue.Queue, alarm, reload <-chan struct{}) (qmanager.Signals, error) {
	// Open the fifo read-write: we are then a writer too, so reads block
	// instead of returning end-of-file whenever the last omail-queue
	// closes it.
	fifo, err := os.OpenFile(q.Path(queue.Trigger, ""), os.O_RDWR, 0)
	if err != nil {
		return qmanager.Signals{}, fmt.Errorf("trigger fifo: %w", err)
	}
	newMail := make(chan struct{}, 1)
	go func() {
		buf := make([]byte, 512)
		for {
			if _, err := fifo.Read(buf); err != nil {
				return
			}
			select {
			case newMail <- struct{}{}:
			default: // one pending wake-up is enough
			}
		}
	}()
	return qmanager.Signals{New: newMail, Alarm: alarm, Reload: reload}, nil
}

// stopSignals turns SIGTERM and SIGINT into two contexts: the first
// signal ends stop (start nothing new, let the deliveries in progress
// finish), a second one ends hard as well (cut them off: a program
// killed, an SMTP session closed, each a deferral tried again later).
// The second is the way out of a delivery that does not end, as `svc
// -d` twice, or Ctrl-C twice.
func stopSignals(stderr io.Writer) (stop, hard context.Context, unnotify func()) {
	stop, stopNow := context.WithCancel(context.Background())
	hard, hardNow := context.WithCancel(context.Background())
	c := make(chan os.Signal, 2)
	signal.Notify(c, syscall.SIGTERM, syscall.SIGINT)
	quit := make(chan struct{})
	go func() {
		select {
		case s := <-c:
			fmt.Fprintf(stderr, "status: omail-deliver: %v: starting no new delivery, finishing those in progress (again to cut them off)\n", s)
			stopNow()
		case <-quit:
			return
		}
		select {
		case s := <-c:
			fmt.Fprintf(stderr, "status: omail-deliver: %v again: cutting off the deliveries in progress\n", s)
			hardNow()
		case <-quit:
		}
	}()
	return stop, hard, func() {
		signal.Stop(c)
		close(quit)
		stopNow()
		hardNow()
	}
}

func relay(s os.Signal) <-chan struct{} {
	c := make(chan os.Signal, 1)
	signal.Notify(c, s)
	out := make(chan struct{}, 1)
	go func() {
		for range c {
			select {
			case out <- struct{}{}:
			default:
			}
		}
	}()
	return out
}
