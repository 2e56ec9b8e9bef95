// Package crashpoint gives programs named points where tests can crash
// them, run a command, or make a file operation fail as a full or broken
// disk would, to test what a crash or a disk error at each step leaves.
//
// The points of the commit paths are listed in points.go; a unit test
// fails when the code names a point the list lacks, so that the scenario
// iterating over the list (test/crash-every-point) cannot miss one.
package crashpoint

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"omail/lib/home"
)

// New returns the test hooks at named points of the program:
//
//   - OMAIL_CRASHPOINT=name[:N]: the program kills itself with SIGKILL
//     the Nth time (default the first) it reaches the point, so tests
//     can crash it at a defined step without timing anything;
//   - OMAIL_HOOKPOINT=name and OMAIL_HOOKCMD=command: at the point, the
//     program runs "sh -c command" and waits for it (tests use it to
//     change things under the program's feet, e.g. deliver mail into an
//     mbox being packed);
//   - OMAIL_FAULT=name[:N]=ENOSPC|EIO|EDQUOT|EXDEV[@K][,...]: the Nth time (default
//     the first) the program reaches the file operation called name (Op,
//     Writer), the operation fails with that error instead of running;
//     a Writer point writes K bytes first (default 0), so that the file
//     is torn when the error comes. Only the Nth time: the program's
//     next attempt finds the disk healthy again.
//
// A set-id program ignores all three. With none set, New returns nil.
func New(env home.Env) Hook {
	h, err := Parse(env.Trusted(Vars[0]), env.Trusted(Vars[1]), env.Trusted(Vars[2]), env.Trusted(Vars[3]))
	if err != nil {
		// A test that asks for a fault it cannot have must not pass by
		// running without it.
		fmt.Fprintln(os.Stderr, "crashpoint:", err)
		os.Exit(111)
	}
	return h
}

// Vars are the environment variables New reads: a program that runs a
// child with a cleared environment hands these on.
var Vars = []string{"OMAIL_CRASHPOINT", "OMAIL_HOOKPOINT", "OMAIL_HOOKCMD", "OMAIL_FAULT"}

// Process returns the hooks of the process's own environment, made once:
// for code called deep inside a program, where no hooks are handed
// down (the OCMP outbox transport, the SMTP client).
var Process = sync.OnceValue(func() Hook { return New(home.Env(os.Environ())) })

// Parse makes the hooks New makes from its environment variables' values;
// unit tests call it (with crash "" and hook "": faults only).
func Parse(crash, hook, cmd, faults string) (Hook, error) {
	fs, err := parseFaults(faults)
	if err != nil {
		return nil, err
	}
	if crash == "" && (hook == "" || cmd == "") && len(fs) == 0 {
		return nil, nil
	}
	name, nth := cutCount(crash)
	var mu sync.Mutex // the resident programs reach points concurrently
	return func(point string) {
		if q, ok := strings.CutPrefix(point, faultQuery); ok {
			mu.Lock()
			err := fs.reach(q)
			mu.Unlock()
			if err != nil {
				panic(err)
			}
			return
		}
		if hook != "" && cmd != "" && point == hook {
			c := exec.Command("/bin/sh", "-c", cmd)
			c.Stdout, c.Stderr = os.Stderr, os.Stderr
			c.Run()
		}
		if crash == "" || point != name {
			return
		}
		mu.Lock()
		nth--
		hit := nth == 0
		mu.Unlock()
		if hit {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		}
	}, nil
}

// cutCount splits "name[:N]" (N at least 1, default 1).
func cutCount(s string) (string, int) {
	name, nth, _ := strings.Cut(s, ":")
	n, err := strconv.Atoi(nth)
	if err != nil || n < 1 {
		n = 1
	}
	return name, n
}

// Hook is a program's test hooks, called with the name of each point the
// program reaches. nil means none.
//
// Its type is a plain function so that a unit test can hook a point with
// a function literal; such a function never injects a fault (it is asked
// for one with a name it does not know, and returns).
type Hook func(point string)

// At runs the hooks for point; a nil Hook does nothing.
func (h Hook) At(point string) {
	if h != nil {
		h(point)
	}
}

// Op runs op, a file operation on a commit path (a write, fsync, rename,
// link, unlink or truncate), as the point called name: the crash point
// name before it and name+"-done" after it succeeded, and the fault
// injected there, returned instead of running op.
func (h Hook) Op(name string, op func() error) error {
	if h != nil {
		h(name)
		if err := h.fault(name); err != nil {
			return err
		}
	}
	if err := op(); err != nil {
		return err
	}
	h.At(name + Done)
	return nil
}

// Done ends the name of the crash point after an Op.
const Done = "-done"

// Writer returns w, or, when a fault is injected at the write point
// called name, a writer that writes the fault's K bytes to w and then
// fails with the fault's error: a disk that fills in the middle of a
// message.
func (h Hook) Writer(name string, w io.Writer) io.Writer {
	if h == nil {
		return w
	}
	if err := h.fault(name); err != nil {
		f := err.(*Fault)
		return &tornWriter{w: w, left: f.After, err: f}
	}
	return w
}

// faultQuery starts the name Op and Writer call the hook with to ask
// for a fault: no program's point starts with it.
const faultQuery = "?fault "

// Asking reports whether a name a hook is called with is Op's or
// Writer's question for a fault rather than a point reached: a test's
// hook that records points skips those.
func Asking(point string) bool { return strings.HasPrefix(point, faultQuery) }

// fault returns the fault injected at the point called name, if any. The
// hook answers by panicking with it: the hook is a plain function (see
// Hook), and the panic never leaves this function.
func (h Hook) fault(name string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(*Fault)
			if !ok {
				panic(r)
			}
			err = f
		}
	}()
	h(faultQuery + name)
	return nil
}

// Fault is an injected disk error. errors.Is(fault, syscall.ENOSPC) (or
// EIO) holds, so the code under test sees what a real disk would give.
type Fault struct {
	Point string
	Errno syscall.Errno
	After int64 // bytes a Writer writes before failing
}

func (f *Fault) Error() string { return f.Point + ": " + f.Errno.Error() + " (injected)" }

// Unwrap gives the errno.
func (f *Fault) Unwrap() error { return f.Errno }

// Temporary says that a full or broken disk is worth retrying later.
func (f *Fault) Temporary() bool { return true }

// fault is one entry of OMAIL_FAULT.
type fault struct {
	Fault
	nth int // reaches left until it fires; 0 once fired
}

type faultList []*fault

// errnos are the errors a spec may name: the disk's, and EXDEV, which
// sends a rename down its cross-device path (quarantine's copy).
var errnos = map[string]syscall.Errno{"ENOSPC": syscall.ENOSPC, "EIO": syscall.EIO, "EDQUOT": syscall.EDQUOT, "EXDEV": syscall.EXDEV}

func parseFaults(spec string) (faultList, error) {
	var fs faultList
	for _, one := range strings.Split(spec, ",") {
		if one == "" {
			continue
		}
		where, what, ok := strings.Cut(one, "=")
		if !ok {
			return nil, fmt.Errorf("OMAIL_FAULT %q: not point[:N]=ERRNO[@K]", one)
		}
		name, nth := cutCount(where)
		ename, after, _ := strings.Cut(what, "@")
		e, ok := errnos[ename]
		if !ok {
			return nil, fmt.Errorf("OMAIL_FAULT %q: unknown error %q", one, ename)
		}
		k := int64(0)
		if after != "" {
			var err error
			if k, err = strconv.ParseInt(after, 10, 64); err != nil || k < 0 {
				return nil, fmt.Errorf("OMAIL_FAULT %q: bad byte count %q", one, after)
			}
		}
		fs = append(fs, &fault{Fault: Fault{Point: name, Errno: e, After: k}, nth: nth})
	}
	return fs, nil
}

// reach counts one reach of the point and returns the fault that fires.
func (fs faultList) reach(point string) *Fault {
	for _, f := range fs {
		if f.Point == point && f.nth > 0 {
			if f.nth--; f.nth == 0 {
				c := f.Fault
				return &c
			}
		}
	}
	return nil
}

// tornWriter writes left bytes, then fails.
type tornWriter struct {
	w    io.Writer
	left int64
	err  error
}

func (t *tornWriter) Write(p []byte) (int, error) {
	if int64(len(p)) <= t.left {
		n, err := t.w.Write(p)
		t.left -= int64(n)
		return n, err
	}
	n, err := t.w.Write(p[:t.left])
	t.left -= int64(n)
	if err != nil {
		return n, err
	}
	return n, t.err
}
