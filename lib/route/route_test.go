package route

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"omail/lib/control"
	"omail/lib/internal/testfake"
)

func ctlWith(t *testing.T, files map[string]string) *control.Dir {
	t.Helper()
	dir := t.TempDir()
	ctl := control.New(dir)
	if err := os.MkdirAll(ctl.Path, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		mode := os.FileMode(0o644)
		if name == "smtpauth" {
			mode = 0o600
		}
		if err := os.WriteFile(ctl.File(name), []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
	return ctl
}

func TestLookup(t *testing.T) {
	ctl := ctlWith(t, map[string]string{
		"smtproutes": "example.com:relay.example.net:2525\n.example.org:[127.0.0.1]\nmx.test:\nmxport.test::587\nv6.test:[IPv6:::1]:27\nlit.test:[127.0.0.2]\n:smart.example.net\n",
		"smtptls":    "relay.example.net\nmx.test\n[127.0.0.2]\n",
		"smtpauth":   "smart.example.net:joe:pa:ss\n",
	})
	r, err := Load(ctl)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		dom  string
		want Dest
	}{
		{"Example.COM", Dest{Domain: "example.com", Relay: "relay.example.net", Port: 2525, RequireTLS: true}},
		{"a.b.example.org", Dest{Domain: "a.b.example.org", Relay: "[127.0.0.1]", Port: 25}},
		{"mx.test", Dest{Domain: "mx.test", Port: 25, RequireTLS: true}},
		{"mxport.test", Dest{Domain: "mxport.test", Port: 587}},
		{"lit.test", Dest{Domain: "lit.test", Relay: "[127.0.0.2]", Port: 25, RequireTLS: true}},
		{"v6.test", Dest{Domain: "v6.test", Relay: "[IPv6:::1]", Port: 27}},
		{"other.test", Dest{Domain: "other.test", Relay: "smart.example.net", Port: 25, RequireTLS: true, Auth: &Credentials{"joe", "pa:ss"}}},
	} {
		got := r.Lookup(c.dom)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("Lookup(%q) = %+v, want %+v", c.dom, got, c.want)
		}
	}
	if (*Routes)(nil).Lookup("x.test").Relay != "" {
		t.Error("nil routes should mean MX")
	}
}

func TestLoadRefuses(t *testing.T) {
	for _, bad := range []string{"x.test:relay:99999\n", "x.test:[nope]\n", "x.test:[1.2.3.4\n", "x.test:re lay\n", "x.test:[1.2.3.4]x\n", "nocolon\n"} {
		if _, err := Load(ctlWith(t, map[string]string{"smtproutes": bad})); err == nil {
			t.Errorf("smtproutes %q accepted", bad)
		}
	}
	ctl := ctlWith(t, map[string]string{"smtpauth": "relay:u:p\n"})
	if err := os.Chmod(ctl.File("smtpauth"), 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(ctl); err == nil || !strings.Contains(err.Error(), "readable") {
		t.Errorf("group-readable smtpauth: err = %v", err)
	}
	ctl = ctlWith(t, map[string]string{"smtpauth": "relay-without-user\n"})
	if _, err := Load(ctl); err == nil {
		t.Error("bad smtpauth accepted")
	}
	if err := os.WriteFile(filepath.Join(ctl.Path, "smtpauth"), []byte("relay:user:secretpw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(ctl); err != nil {
		t.Error(err)
	}
}

func TestHosts(t *testing.T) {
	dns := testfake.DNS{
		MX: map[string][]*net.MX{
			"pref.test": {{Host: "c.test.", Pref: 20}, {Host: "a.test.", Pref: 10}, {Host: "b.test.", Pref: 10}},
			"null.test": {{Host: ".", Pref: 0}},
		},
		Hosts: map[string][]string{"nomx.test": {"127.0.0.1"}},
		Fail:  map[string]bool{"broken.test": true},
	}
	reverse := func(n int, swap func(i, j int)) {
		for i := 0; i < n/2; i++ {
			swap(i, n-1-i)
		}
	}
	ctx := context.Background()
	h, err := Hosts(ctx, dns, Dest{Domain: "pref.test", Port: 25}, reverse)
	if err != nil {
		t.Fatal(err)
	}
	want := []Host{{"b.test", 25}, {"a.test", 25}, {"c.test", 25}}
	if !reflect.DeepEqual(h, want) {
		t.Errorf("got %v, want %v", h, want)
	}
	h, err = Hosts(ctx, dns, Dest{Domain: "nomx.test", Port: 25}, nil)
	if err != nil || !reflect.DeepEqual(h, []Host{{"nomx.test", 25}}) {
		t.Errorf("no MX: %v %v", h, err)
	}
	h, err = Hosts(ctx, dns, Dest{Domain: "x.test", Relay: "[127.0.0.1]", Port: 26}, nil)
	if err != nil || !reflect.DeepEqual(h, []Host{{"[127.0.0.1]", 26}}) {
		t.Errorf("relay: %v %v", h, err)
	}
	for dom, perm := range map[string]bool{"null.test": true, "gone.test": true, "broken.test": false} {
		_, err := Hosts(ctx, dns, Dest{Domain: dom, Port: 25}, nil)
		e, ok := err.(*Error)
		if !ok || e.Perm != perm {
			t.Errorf("%s: err %v, want perm=%v", dom, err, perm)
		}
	}
	a, err := Addrs(ctx, dns, Host{"[IPv6:::1]", 25})
	if err != nil || !reflect.DeepEqual(a, []string{"::1"}) {
		t.Errorf("literal: %v %v", a, err)
	}
	if _, err := Addrs(ctx, dns, Host{"gone.test", 25}); err == nil || err.(*Error).Perm {
		t.Errorf("missing host should be temporary: %v", err)
	}
}

func FuzzParseRelay(f *testing.F) {
	for _, s := range []string{"", "relay", "relay:25", "[127.0.0.1]:2525", "[IPv6:::1]", ":587", "[::1", "a:b:c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		relay, port, err := ParseRelay(s)
		if err != nil {
			return
		}
		if port < 1 || port > 65535 {
			t.Fatalf("port %d from %q", port, s)
		}
		if strings.HasPrefix(relay, "[") {
			if _, err := LiteralAddr(relay); err != nil {
				t.Fatalf("literal %q accepted from %q", relay, s)
			}
		} else if strings.ContainsAny(relay, ": []") {
			t.Fatalf("relay %q from %q", relay, s)
		}
	})
}

func FuzzParseAuth(f *testing.F) {
	for _, s := range []string{"relay:u:p", "[::1]:u:p:q", "x", "a::b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := parseAuth(strings.Split(s, "\n"))
		if err != nil {
			return
		}
		for relay, c := range m {
			if relay == "" || c.User == "" {
				t.Fatalf("empty field from %q", s)
			}
		}
	})
}
