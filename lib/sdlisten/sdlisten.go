// Package sdlisten takes the listening sockets systemd passes to a
// service started by a socket unit with Accept=no (LISTEN_FDS,
// LISTEN_PID, LISTEN_FDNAMES; sd_listen_fds(3)): descriptors 3, 4, ...
package sdlisten

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// firstFD is SD_LISTEN_FDS_START.
const firstFD = 3

// maxFDs bounds LISTEN_FDS: a larger number is a mistake, not sockets.
const maxFDs = 1024

// Vars are the variables systemd sets for socket activation; they are
// meant for this process only, never for its children.
var Vars = []string{"LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"}

// Parse reads LISTEN_FDS and LISTEN_FDNAMES through getenv and returns
// how many descriptors were passed and their names ("" when unnamed).
// It returns 0 when LISTEN_PID is not pid: the variables were meant for
// another process (a parent that did not clear them).
func Parse(getenv func(string) string, pid int) (int, []string, error) {
	fds, spid := getenv("LISTEN_FDS"), getenv("LISTEN_PID")
	if fds == "" || spid == "" {
		return 0, nil, nil
	}
	p, err := strconv.Atoi(spid)
	if err != nil || p <= 0 {
		return 0, nil, fmt.Errorf("LISTEN_PID=%q is not a process id", spid)
	}
	if p != pid {
		return 0, nil, nil
	}
	n, err := strconv.Atoi(fds)
	if err != nil || n < 0 || n > maxFDs {
		return 0, nil, fmt.Errorf("LISTEN_FDS=%q is not a number of descriptors", fds)
	}
	names := make([]string, n)
	if v := getenv("LISTEN_FDNAMES"); v != "" {
		l := strings.Split(v, ":")
		if len(l) != n {
			return 0, nil, fmt.Errorf("LISTEN_FDNAMES names %d sockets, LISTEN_FDS=%d", len(l), n)
		}
		copy(names, l)
	}
	return n, names, nil
}

// Socket is one passed listening socket.
type Socket struct {
	net.Listener
	Name string
}

// Listening reports whether descriptor fd is a listening socket. With
// Accept=yes systemd passes one connected socket the same way: that is
// a connection to serve, not a socket to accept on.
func Listening(fd int) bool {
	v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
	return err == nil && v == 1
}

// CloseOnExec marks the n passed descriptors close-on-exec, so that
// programs we run never get them: with Accept=yes the one descriptor
// is the client's connection, which a child would otherwise hold open
// after the session.
func CloseOnExec(n int) {
	for i := 0; i < n; i++ {
		syscall.CloseOnExec(firstFD + i)
	}
}

// Listeners turns n passed descriptors into listeners. Every one must
// be a listening stream socket. The descriptors are marked close-on-exec
// so that programs we run (checkpassword, a queue program) never get
// them.
func Listeners(n int, names []string) ([]Socket, error) {
	var out []Socket
	for i := 0; i < n; i++ {
		fd := firstFD + i
		if !Listening(fd) {
			closeAll(out)
			return nil, fmt.Errorf("passed descriptor %d is not a listening socket", fd)
		}
		syscall.CloseOnExec(fd)
		f := os.NewFile(uintptr(fd), "LISTEN_FD_"+strconv.Itoa(fd))
		l, err := net.FileListener(f) // a duplicate: f is ours to close
		f.Close()
		if err != nil {
			closeAll(out)
			return nil, fmt.Errorf("passed descriptor %d: %v", fd, err)
		}
		out = append(out, Socket{Listener: l, Name: names[i]})
	}
	return out, nil
}

func closeAll(s []Socket) {
	for _, x := range s {
		x.Close()
	}
}
