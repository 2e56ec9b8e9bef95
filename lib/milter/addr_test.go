package milter

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseAddr(t *testing.T) {
	good := map[string]Addr{
		"inet:9801@127.0.0.1":  {"tcp", "127.0.0.1:9801"},
		"INET:0@127.0.0.1":     {"tcp", "127.0.0.1:0"},
		"inet6:9801@[::1]":     {"tcp", "[::1]:9801"},
		"inet6:9801@::1":       {"tcp", "[::1]:9801"},
		"inet6:1@[0:0::1]":     {"tcp", "[::1]:1"},
		"unix:/run/omail.sock": {"unix", "/run/omail.sock"},
		"local:/x":             {"unix", "/x"},
	}
	for s, want := range good {
		got, err := ParseAddr(s)
		if err != nil || got != want {
			t.Errorf("ParseAddr(%q) = %v %v, want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "9801", "inet:9801", "inet:@127.0.0.1", "inet:x@127.0.0.1", "inet:65536@127.0.0.1",
		"inet:-1@127.0.0.1", "inet:+1@127.0.0.1", "inet:01@127.0.0.1", "inet:9801@localhost", "inet:9801@::1",
		"inet6:9801@127.0.0.1", "inet6:9801@[::ffff:127.0.0.1]", "inet6:1@[fe80::1%eth0]", "inet:1@[127.0.0.1]",
		"unix:", "unix:relative.sock", "unix:/a\x00b", "unix:/" + strings.Repeat("x", 100), "tcp:1@127.0.0.1"} {
		if a, err := ParseAddr(s); err == nil {
			t.Errorf("ParseAddr(%q) = %v, want an error", s, a)
		}
	}
}

// FuzzParseAddr: no panic; what is accepted is a loopback-free-form
// address net.Listen can take: an IP literal host and a port, or an
// absolute path.
func FuzzParseAddr(f *testing.F) {
	for _, s := range []string{"inet:9801@127.0.0.1", "inet6:9801@[::1]", "unix:/run/x", "inet:1@a", "local:/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAddr(s)
		if err != nil {
			return
		}
		switch a.Network {
		case "unix":
			if !strings.HasPrefix(a.Address, "/") || strings.ContainsRune(a.Address, 0) {
				t.Fatalf("%q: path %q", s, a.Address)
			}
		case "tcp":
			host, _, err := net.SplitHostPort(a.Address)
			if err != nil || net.ParseIP(host) == nil {
				t.Fatalf("%q: address %q", s, a.Address)
			}
		default:
			t.Fatalf("%q: network %q", s, a.Network)
		}
	})
}

func TestListenReplacesStaleSocket(t *testing.T) {
	dir, err := os.MkdirTemp("", "milter") // short: socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	a := Addr{"unix", filepath.Join(dir, "s")}
	l, err := Listen(a)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(a); err == nil {
		t.Fatal("a second server took a live socket")
	}
	// A server killed without unlinking leaves its socket file.
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	l, err = Listen(a)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	l.Close()
}

func TestCRLFToLF(t *testing.T) {
	in := "a\r\nb\rc\r\r\nd\r"
	want := "a\nb\rc\r\nd\r"
	// Every split of the input into two writes gives the same output.
	for i := 0; i <= len(in); i++ {
		var out bytes.Buffer
		c := &crlfToLF{w: &out}
		c.Write([]byte(in[:i]))
		c.Write([]byte(in[i:]))
		c.Close()
		if out.String() != want || c.n != int64(len(want)) {
			t.Errorf("split at %d: %q (n %d), want %q", i, out.String(), c.n, want)
		}
	}
}

// FuzzCRLFToLF: written in any two pieces, the output is the input
// with each CRLF made LF.
func FuzzCRLFToLF(f *testing.F) {
	f.Add([]byte("a\r\nb\r"), 2)
	f.Add([]byte("\r\r\n\n"), 1)
	f.Fuzz(func(t *testing.T, in []byte, cut int) {
		if cut < 0 || cut > len(in) {
			cut = len(in) / 2
		}
		var out bytes.Buffer
		c := &crlfToLF{w: &out}
		c.Write(in[:cut])
		c.Write(in[cut:])
		c.Close()
		want := bytes.ReplaceAll(in, []byte("\r\n"), []byte("\n"))
		if !bytes.Equal(out.Bytes(), want) {
			t.Fatalf("%q split at %d: %q, want %q", in, cut, out.Bytes(), want)
		}
	})
}
