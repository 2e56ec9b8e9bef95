// Command resident is a measuring harness for make bench, not a part of
// omail: it shows what a resident omail-smtpd would accept, the design
// change proposed in docs/BENCHMARKS.md. It listens on a loopback port
// (printed on stdout) and serves every connection in a goroutine with
// the same smtpdcmd.Run that omail-smtpd runs once per process, in the
// environment tcpserver would give it (no tcprules: the benchmark's
// rules allow everyone). Queueing is omail's own, in process when
// omail-queue is not set-id, with the same fsyncs before each 250.
package main

import (
	"fmt"
	"net"
	"os"

	"omail/lib/home"
	"omail/lib/smtpdcmd"
)

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "resident:", err)
		os.Exit(111)
	}
	fmt.Println(ln.Addr().(*net.TCPAddr).Port)
	base := os.Environ()
	for {
		c, err := ln.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, "resident:", err)
			os.Exit(111)
		}
		go serve(c, base)
	}
}

func serve(c net.Conn, base []string) {
	defer c.Close()
	local, _ := c.LocalAddr().(*net.TCPAddr)
	remote, _ := c.RemoteAddr().(*net.TCPAddr)
	env := append(append([]string(nil), base...), "PROTO=TCP",
		"TCPLOCALIP="+local.IP.String(), fmt.Sprintf("TCPLOCALPORT=%d", local.Port),
		"TCPREMOTEIP="+remote.IP.String(), fmt.Sprintf("TCPREMOTEPORT=%d", remote.Port))
	smtpdcmd.Run([]string{"omail-smtpd"}, home.Env(env), c, c, os.Stderr)
}
