// grabber runs as a user who gets mail. It watches for the resident
// delivery children of one omail-deliver binary (its path, argv[0] of
// the children) and tries to take fd 3 of each (pidfd_getfd(2)), the
// socket on which root's omail-deliver sends it queue files. It prints
// one line per child: "took PID" or "refused PID: ERROR". It runs until
// killed, after printing "watching".
package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: grabber OMAIL-DELIVER-PATH")
		os.Exit(2)
	}
	want := []byte(os.Args[1] + "\x00-local\x00-resident\x00")
	seen := map[int]bool{}
	fmt.Println("watching")
	for {
		d, err := os.Open("/proc")
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		names, _ := d.Readdirnames(-1)
		d.Close()
		for _, n := range names {
			pid, err := strconv.Atoi(n)
			if err != nil || seen[pid] {
				continue
			}
			cl, err := os.ReadFile("/proc/" + n + "/cmdline")
			if err != nil || !bytes.Equal(cl, want) {
				continue
			}
			seen[pid] = true
			pfd, err := unix.PidfdOpen(pid, 0)
			if err != nil {
				continue // gone already
			}
			fd, err := unix.PidfdGetfd(pfd, 3, 0)
			unix.Close(pfd)
			if err != nil {
				fmt.Println("refused", pid, err)
				continue
			}
			unix.Close(fd)
			fmt.Println("took", pid)
		}
	}
}
