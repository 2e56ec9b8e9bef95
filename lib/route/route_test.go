package route

import (
	"context"
	"net"
	"os"
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
}

// An smtpauth that cannot be used (readable by others, a bad line) does
// not fail Load, so local and OCMP mail keep going: every destination
// carries the problem in Wait, and the SMTP transport defers with it.
func TestBadSMTPAuthWaits(t *testing.T) {
	for _, c := range []struct {
		body string
		mode os.FileMode
		text string
	}{
		{"relay:u:p\n", 0o644, "mode 0644: readable by others; chmod 600 it"},
		{"relay:u:p\n", 0o640, "readable by others"},
		{"relay-without-user\n", 0o600, "a line with no relay:user:password"},
		{"relay:0:u:p\n", 0o600, "bad port"},
		{"relay:587:\n", 0o600, "no user:password after the port"},
	} {
		ctl := ctlWith(t, map[string]string{"smtpauth": c.body, "smtproutes": "x.test:relay\n"})
		if err := os.Chmod(ctl.File("smtpauth"), c.mode); err != nil {
			t.Fatal(err)
		}
		r, err := Load(ctl)
		if err != nil {
			t.Fatalf("%q %04o: Load: %v", c.body, c.mode, err)
		}
		for _, dom := range []string{"x.test", "mx.test"} {
			d := r.Lookup(dom)
			if !strings.HasPrefix(d.Wait, "4.3.5 control file smtpauth: ") || !strings.Contains(d.Wait, c.text) || d.Auth != nil {
				t.Errorf("%q %04o: %s: %+v, want Wait with %q", c.body, c.mode, dom, d, c.text)
			}
			if strings.Contains(d.Wait, "p\n") || strings.Contains(d.Wait, ":u:") {
				t.Errorf("the password may show: %q", d.Wait)
			}
		}
	}
	ctl := ctlWith(t, map[string]string{"smtpauth": "relay:user:secretpw\n"})
	r, err := Load(ctl)
	if err != nil || r.Lookup("x.test").Wait != "" {
		t.Errorf("a good smtpauth: %v %+v", err, r.Lookup("x.test"))
	}
}

// smtpauth entries may name a port: "relay:port:user:password" is for
// that port only and wins over "relay:user:password".
func TestSMTPAuthPort(t *testing.T) {
	ctl := ctlWith(t, map[string]string{
		"smtproutes": "a.test:smart.example:587\nb.test:smart.example\nc.test:[::1]:2525\nd.test:other.example:465\ne.test:other.example\n",
		"smtpauth":   "smart.example:587:sub:pw:587\nSmart.Example:plain:pw25\n[::1]:2525:v6:pw6\nother.example:465:1234:digits\n",
	})
	r, err := Load(ctl)
	if err != nil {
		t.Fatal(err)
	}
	for dom, want := range map[string]*Credentials{
		"a.test": {"sub", "pw:587"},
		"b.test": {"plain", "pw25"},
		"c.test": {"v6", "pw6"},
		"d.test": {"1234", "digits"},
		"e.test": nil,
	} {
		if got := r.Lookup(dom); !reflect.DeepEqual(got.Auth, want) || got.RequireTLS != (want != nil) {
			t.Errorf("%s: %+v, want %+v", dom, got, want)
		}
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

// A line of smtptls that is not a name is refused: ignored, it would
// leave TLS unrequired where the administrator required it, silently. A
// '#' after a value (control files have whole-line comments only) says
// so in the error; in smtproutes too.
func TestBadSmtptlsLine(t *testing.T) {
	for _, tls := range []string{
		"mail.isp.example        # a relay, spelled as in smtproutes\n",
		"good.example\nbank example\n",
		"[192.0.2.300]\n",
		"bank.example:587\n",
	} {
		_, err := Load(ctlWith(t, map[string]string{"smtproutes": "example.com:mail.isp.example\n", "smtptls": tls}))
		if err == nil || !strings.Contains(err.Error(), "control file smtptls: line ") {
			t.Errorf("%q: error %v", tls, err)
			continue
		}
		if strings.Contains(tls, "#") != strings.Contains(err.Error(), "a comment must be a line of its own") {
			t.Errorf("%q: error %v", tls, err)
		}
	}
	r, err := Load(ctlWith(t, map[string]string{"smtproutes": "example.com:mail.isp.example\n", "smtptls": "# relays\nmail.isp.example\n.gov.example\n[192.0.2.7]\nbank.example:\n"}))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"example.com", "x.gov.example", "bank.example"} {
		if !r.Lookup(d).RequireTLS {
			t.Errorf("%s: TLS not required", d)
		}
	}
	_, err = Load(ctlWith(t, map[string]string{"smtproutes": "example.com:mail.isp.example          # via the relay\n"}))
	if err == nil || !strings.Contains(err.Error(), "a comment must be a line of its own") {
		t.Errorf("smtproutes: error %v", err)
	}
}

// docBlock is the first indented example after a heading of a doc.
func docBlock(t *testing.T, doc, heading string) string {
	t.Helper()
	b, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("%s: no heading %q", doc, heading)
	}
	var out []string
	for _, l := range strings.Split(rest, "\n") {
		if v, ok := strings.CutPrefix(l, "    "); ok {
			out = append(out, v)
		} else if len(out) > 0 {
			break
		}
	}
	return strings.Join(out, "\n") + "\n"
}

// The examples of docs/remote-delivery.md work as they are written.
func TestDocExamples(t *testing.T) {
	const doc = "../../docs/remote-delivery.md"
	routes := docBlock(t, doc, "## Routes: `control/smtproutes`")
	tls := docBlock(t, doc, "## TLS: `control/smtptls`")
	r, err := Load(ctlWith(t, map[string]string{"smtproutes": routes, "smtptls": tls}))
	if err != nil {
		t.Fatalf("%v\nsmtproutes:\n%s\nsmtptls:\n%s", err, routes, tls)
	}
	for domain, want := range map[string]string{
		"example.com":   "mail.isp.example port 25 tls",
		"a.example.org": "[192.0.2.7] port 2525 tls",
		"partner.test":  "MX of partner.test port 25",
		"other.test":    "smarthost.isp.example port 587",
	} {
		d := r.Lookup(domain)
		got := d.String()
		if d.RequireTLS {
			got += " tls"
		}
		if got != want {
			t.Errorf("%s: %s, want %s", domain, got, want)
		}
	}
}

// An internationalised domain in smtptls is taken (as its A-labels, the
// form lookups use), not refused as a bad line.
func TestSMTPTLSInternationalName(t *testing.T) {
	r, err := Load(ctlWith(t, map[string]string{"smtptls": "bücher.example\n.mañana.example\n"}))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	for _, d := range []string{"xn--bcher-kva.example", "bücher.example", "mx.xn--maana-pta.example"} {
		if !r.Lookup(d).RequireTLS {
			t.Errorf("TLS not required for %s", d)
		}
	}
}
