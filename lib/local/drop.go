package local

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"omail/lib/home"
	"omail/lib/privdrop"
)

// IDsEnv says that a delivery child is to take ids its parent chose,
// and where they are: its value is the descriptor (idsFD, "4") from
// which the child reads them, to its end: "UID:GID" or
// "UID:GID:G1,G2,...", decimal numbers (no group: none at all). They
// travel on a pipe, not in the environment, which execve caps at 128
// KiB a string: a user of sssd or AD id mapping may be in thousands of
// groups of 10-digit ids.
//
// A root omail-deliver starts its delivery children as root, with this
// variable, and each child makes itself not dumpable and only then
// takes the user's ids (enterChild). Started with the user's ids
// directly, a child would be dumpable from its exec (exec of a binary
// the user may read makes the process dumpable again) until it could
// say otherwise: long enough, through the Go runtime's start-up, for a
// process of that uid to take its fd 3 (pidfd_getfd(2), ptrace), the
// socket on which root sends it queue files, whole envelope and Bcc
// recipients included, and to answer in its name.
const IDsEnv = "OMAIL_LOCAL_IDS"

// idsFD is the child's descriptor that carries its ids (IDsEnv).
const idsFD = 4

// maxGroups is the kernel's NGROUPS_MAX.
const maxGroups = 65536

// maxIDsText bounds the ids' text: a uid, a gid and maxGroups groups,
// each of at most 10 digits and a separator.
const maxIDsText = (maxGroups + 2) * 11

// encodeIDs is the text of the ids that the child reads (IDsEnv).
func encodeIDs(uid, gid int, groups []int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d:%d", uid, gid)
	for i, g := range groups {
		if i == 0 {
			b.WriteByte(':')
		} else {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(g))
	}
	return b.String()
}

// decodeIDs reads the text of the ids (IDsEnv). A uid of 0 is refused: a child never
// delivers as root. A gid of 0 is taken (an account's primary group may
// be root's, and its children always got it).
func decodeIDs(s string) (uid, gid int, groups []int, err error) {
	f := strings.Split(s, ":")
	if len(f) < 2 || len(f) > 3 {
		return 0, 0, nil, fmt.Errorf("ids %.100q (%s): not UID:GID[:GROUPS]", s, IDsEnv)
	}
	num := func(t string) (int, bool) {
		if t == "" || len(t) > 10 || strings.Trim(t, "0123456789") != "" {
			return 0, false
		}
		n, err := strconv.ParseUint(t, 10, 32)
		return int(n), err == nil && n != 1<<32-1 // (uid_t)-1 means "unchanged"
	}
	var ok1, ok2 bool
	uid, ok1 = num(f[0])
	gid, ok2 = num(f[1])
	if !ok1 || !ok2 {
		return 0, 0, nil, fmt.Errorf("ids %.100q (%s): bad uid or gid", s, IDsEnv)
	}
	if uid == 0 {
		return 0, 0, nil, fmt.Errorf("ids %.100q (%s): a delivery child never runs as root", s, IDsEnv)
	}
	if len(f) == 3 {
		gs := strings.Split(f[2], ",")
		if len(gs) > maxGroups {
			return 0, 0, nil, fmt.Errorf("ids (%s): more than %d groups", IDsEnv, maxGroups)
		}
		for _, t := range gs {
			g, ok := num(t)
			if !ok {
				return 0, 0, nil, fmt.Errorf("ids %.100q (%s): bad group %q", s, IDsEnv, t)
			}
			groups = append(groups, g)
		}
	}
	return uid, gid, groups, nil
}

// enterChild is the first thing a delivery child does, before it reads
// a request or its fd 3: it makes itself not dumpable, so that no
// process of the user's uid, the user's own programs included, can take
// its descriptors (ptrace, pidfd_getfd(2), /proc/PID/fd) or its memory;
// then, given IDsEnv (its parent is root: real and effective uid 0), it
// takes those ids
// (privdrop.DropIDs: groups, gid, uid, checked afterwards). It refuses
// to go on as root, or traced. The programs it runs are dumpable again
// (exec of a program that is not set-id resets it) and inherit none of
// its descriptors (all close-on-exec: those it inherited, marked here,
// those it opens itself, and the ones a resident child receives, for
// which ReadMsgUnix asks MSG_CMSG_CLOEXEC).
func enterChild(env home.Env) error {
	// Descriptors root's omail-deliver inherited without close-on-exec
	// (a cron wrapper's `exec 9</etc/shadow`, a lock's descriptor) came
	// this far: none goes on to a program of the user's.
	if err := CloseOnExec(3); err != nil {
		return err
	}
	if err := notDumpable(); err != nil {
		return err
	}
	if where := env.Get(IDsEnv); where != "" {
		// Root's twice: a set-uid omail-deliver would take the ids
		// its caller chose.
		if os.Geteuid() != 0 || os.Getuid() != 0 {
			return fmt.Errorf("%s given, but not started as root (uid %d, euid %d)", IDsEnv, os.Getuid(), os.Geteuid())
		}
		ids, err := readIDs(where)
		if err != nil {
			return err
		}
		uid, gid, groups, err := decodeIDs(ids)
		if err != nil {
			return err
		}
		// The change of ids clears the parent-death signal and sets
		// the dumpable flag to fs.suid_dumpable: both are set again,
		// the signal on a thread that lives as long as the process
		// (this goroutine's, locked to it for good).
		runtime.LockOSThread()
		ppid := os.Getppid()
		if err := privdrop.DropIDs(uid, gid, groups); err != nil {
			return err
		}
		if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0, 0, 0); err != nil {
			return fmt.Errorf("prctl(PR_SET_PDEATHSIG): %v", err)
		}
		if os.Getppid() != ppid {
			return errors.New("the parent is gone")
		}
		if err := notDumpable(); err != nil {
			return err
		}
	}
	if geteuid() == 0 {
		return fmt.Errorf("runs as root without %s: a delivery child never delivers as root", IDsEnv)
	}
	return notTraced()
}

// readIDs reads the ids' text from the descriptor IDsEnv names (its
// value where), to its end, and closes it.
func readIDs(where string) (string, error) {
	if where != strconv.Itoa(idsFD) {
		return "", fmt.Errorf("%s=%.20q: not %d, the descriptor of the ids", IDsEnv, where, idsFD)
	}
	f := os.NewFile(idsFD, "ids")
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxIDsText+1))
	if err != nil {
		return "", fmt.Errorf("%s: fd %d: %v", IDsEnv, idsFD, err)
	}
	if len(b) > maxIDsText {
		return "", fmt.Errorf("%s: fd %d: more than %d bytes of ids", IDsEnv, idsFD, maxIDsText)
	}
	return string(b), nil
}

// notDumpable makes the process not dumpable, and checks that it is.
func notDumpable() error {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_DUMPABLE): %v", err)
	}
	if n, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0); err != nil || n != 0 {
		return fmt.Errorf("still dumpable (%d, %v)", n, err)
	}
	return nil
}

// notTraced checks that no thread of the process is traced: a tracer
// that attached before it was not dumpable (none can after) stays.
func notTraced() error {
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return fmt.Errorf("cannot check for a tracer: %v", err)
	}
	for _, e := range ents {
		b, err := os.ReadFile("/proc/self/task/" + e.Name() + "/status")
		if errors.Is(err, os.ErrNotExist) {
			continue // a thread that has exited
		}
		if err != nil {
			return fmt.Errorf("cannot check for a tracer: %v", err)
		}
		_, rest, ok := bytes.Cut(b, []byte("\nTracerPid:"))
		line, _, _ := bytes.Cut(rest, []byte("\n"))
		if !ok {
			return fmt.Errorf("cannot check for a tracer: no TracerPid in /proc/self/task/%s/status", e.Name())
		}
		if pid := string(bytes.TrimSpace(line)); pid != "0" {
			return fmt.Errorf("traced by pid %s", pid)
		}
	}
	return nil
}

// closeRange is close_range(2); a test puts a kernel without it here.
var closeRange = unix.CloseRange

// CloseOnExec marks every descriptor from first up close-on-exec, so
// that a process keeps what it inherited for itself but passes none of
// it on to the programs it runs: close_range(2) with
// CLOSE_RANGE_CLOEXEC, or, on a kernel without it (before Linux 5.11),
// each descriptor /proc/self/fd lists.
func CloseOnExec(first int) error {
	err := closeRange(uint(first), ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	if err == nil {
		return nil
	}
	// ENOSYS and EINVAL: a kernel without it, or without its CLOEXEC
	// flag (5.9, 5.10); EPERM or EACCES: a seccomp filter (container
	// runtimes, systemd's SystemCallFilter) that refuses it.
	if !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.EPERM) && !errors.Is(err, unix.EACCES) {
		return fmt.Errorf("close_range: %v", err)
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("cannot mark inherited descriptors close-on-exec (no close_range, no /proc): %v", err)
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < first {
			continue
		}
		// (ReadDir's own descriptor is listed, and closed by now.)
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil && !errors.Is(err, unix.EBADF) {
			return fmt.Errorf("fd %d: close-on-exec: %v", fd, err)
		}
	}
	return nil
}
