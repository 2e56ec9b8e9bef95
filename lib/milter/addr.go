package milter

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// DefaultAddr is milterport's default, the original omail's port.
const DefaultAddr = "inet:9801@127.0.0.1"

// Addr is where the milter server listens: Network "tcp" or "unix" and
// an Address for net.Listen.
type Addr struct {
	Network string
	Address string
}

func (a Addr) String() string { return a.Network + ":" + a.Address }

// ParseAddr reads a milter socket specification as sendmail's
// INPUT_MAIL_FILTER S= and libmilter's smfi_setconn write it:
//
//	inet:PORT@IPv4         inet:9801@127.0.0.1
//	inet6:PORT@[IPv6]      inet6:9801@[::1] (brackets optional)
//	unix:/PATH, local:/PATH
//
// The host must be an IP address (no name: omail never asks DNS), the
// port 0 to 65535 (0: any free port, which the log line then names), a
// socket path absolute (the server runs under supervise or systemd,
// whose working directory is not the admin's).
func ParseAddr(s string) (Addr, error) {
	kind, rest, ok := strings.Cut(s, ":")
	if !ok {
		return Addr{}, fmt.Errorf("milter address %q: want inet:PORT@IP, inet6:PORT@[IP] or unix:/PATH", s)
	}
	switch strings.ToLower(kind) {
	case "unix", "local":
		if !strings.HasPrefix(rest, "/") || strings.ContainsRune(rest, 0) || len(rest) > 100 {
			return Addr{}, fmt.Errorf("milter address %q: want an absolute socket path of at most 100 bytes", s)
		}
		return Addr{Network: "unix", Address: rest}, nil
	case "inet", "inet6":
	default:
		return Addr{}, fmt.Errorf("milter address %q: unknown kind %q (inet, inet6, unix)", s, kind)
	}
	port, host, ok := strings.Cut(rest, "@")
	if !ok {
		return Addr{}, fmt.Errorf("milter address %q: want %s:PORT@IP", s, kind)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 || port != strconv.Itoa(n) {
		return Addr{}, fmt.Errorf("milter address %q: bad port %q", s, port)
	}
	v6 := strings.EqualFold(kind, "inet6")
	if v6 && strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.Zone() != "" {
		return Addr{}, fmt.Errorf("milter address %q: %q is not an IP address", s, host)
	}
	if v6 != ip.Is6() || ip.Is4In6() {
		return Addr{}, fmt.Errorf("milter address %q: %s wants an IPv%s address", s, kind, map[bool]string{false: "4", true: "6"}[v6])
	}
	return Addr{Network: "tcp", Address: net.JoinHostPort(ip.String(), port)}, nil
}

// Listen opens the listening socket. A unix socket left by a server
// that is gone (nothing answers on it) is removed first, as libmilter
// does; one that answers is another server's, and an error.
func Listen(a Addr) (net.Listener, error) {
	if a.Network == "unix" {
		if fi, err := os.Lstat(a.Address); err == nil && fi.Mode()&os.ModeSocket != 0 {
			c, err := net.Dial("unix", a.Address)
			if err == nil {
				c.Close()
				return nil, fmt.Errorf("%s: another server is listening there", a.Address)
			}
			if errors.Is(err, syscall.ECONNREFUSED) {
				os.Remove(a.Address)
			}
		}
	}
	return net.Listen(a.Network, a.Address)
}
