package relay

import (
	"net/netip"
	"strings"
	"testing"
)

// A relayclients line is compared as an address or a network, never as
// text: a whole address is one host (192.168.1.1 is not 192.168.1.10
// nor .123), and an IPv6 line is not cut at its first colon (2001:db8::1
// once let every 2001:... relay).
func TestRelayClientsMatchAddressesNotText(t *testing.T) {
	ctl := controlDir(t, map[string]string{"me": "me.example", "relayclients": "192.168.1.1\n2001:db8::1\n" +
		"10.1.\n172.16.5.:\n198.51.100\n2001:db8:77::/48\n203.0.113.0/24\n::ffff:192.0.2.5\n"})
	r, err := Load(ctl)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if len(r.Refused()) != 0 {
		t.Errorf("refused: %v", r.Refused())
	}
	for ip, why := range map[string]string{
		"192.168.1.1": "192.168.1.1", "::ffff:192.168.1.1": "192.168.1.1", "2001:db8::1": "2001:db8::1",
		"2001:0db8:0:0::1": "2001:db8::1", "10.1.200.3": "10.1.", "172.16.5.9": "172.16.5.",
		"198.51.100.7": "198.51.100.", "2001:db8:77:1::5": "2001:db8:77::/48", "203.0.113.200": "203.0.113.0/24",
		"192.0.2.5": "192.0.2.5",
	} {
		if ok, got := r.ClientMayRelay(ip, ""); !ok || got != "relayclients "+why {
			t.Errorf("ClientMayRelay(%s) = %v %q, want relayclients %s", ip, ok, got, why)
		}
	}
	for _, ip := range []string{"192.168.1.10", "192.168.1.123", "192.168.1.", "2001:db8::1:5", "2001:db8::1bad",
		"2001:4860:dead::beef", "2001::1", "10.10.0.1", "172.16.50.1", "198.51.10.7", "198.51.100", "2001:db8:78::1",
		"203.0.114.1", "192.0.2.50", "", "x", "::ffff:10.2.0.1"} {
		if ok, why := r.ClientMayRelay(ip, ""); ok {
			t.Errorf("%q not listed, may relay (%s)", ip, why)
		}
	}
}

// A line that is no address or network grants nothing, and Refused
// names the file and the line for the log.
func TestRelayClientsRefusedLines(t *testing.T) {
	ctl := controlDir(t, map[string]string{"me": "me.example", "relayclients": "# ours\n10.0.0.:\n\n" +
		"2001:db8::1::\n:\n.\n2001\n010.1.\n1.2.3.4.\nfe80::1%eth0\n::ffff:10.0.0.0/104\n1.2.256.\nhost.example\n1.2.3.4/0\n10.1.2.3/8\n10.9.9.9\n"})
	r, err := Load(ctl)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ref := r.Refused()
	if len(ref) != 12 {
		t.Fatalf("refused %d lines, want 12: %v", len(ref), ref)
	}
	first := ref[0].Error()
	if !strings.Contains(first, "relayclients") || !strings.Contains(first, "line 4") || !strings.Contains(first, `"2001:db8::1::"`) {
		t.Errorf("refusal does not name the file, line and text: %s", first)
	}
	if last := ref[11].Error(); !strings.Contains(last, "line 15") || !strings.Contains(last, "host bits") {
		t.Errorf("last refusal: %s", last)
	}
	for _, ip := range []string{"2001:db8::1", "2001::1", "8.1.0.1", "10.1.0.1", "1.2.3.4", "fe80::1", "host.example", "0.0.0.1", "8.8.8.8", "10.1.2.3"} {
		if ok, why := r.ClientMayRelay(ip, ""); ok {
			t.Errorf("%s may relay (%s) by a refused line", ip, why)
		}
	}
	for _, ip := range []string{"10.0.0.3", "10.9.9.9"} {
		if ok, _ := r.ClientMayRelay(ip, ""); !ok {
			t.Errorf("%s listed by a good line, may not relay", ip)
		}
	}
}

// FuzzParseRelayClient: a line accepted is a valid network whose text
// reads back as the same network, and a whole address (no "/", no
// trailing "." or ":") matches itself only.
func FuzzParseRelayClient(f *testing.F) {
	for _, s := range []string{"192.168.1.1", "192.168.1.:", "192.168.1", "10.", "2001:db8::1", "2001:db8::/32",
		"::ffff:1.2.3.4", "fe80::1%eth0", "1.2.3.4/33", ":", "010.1.", "1.2.3.4:x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := parseRelayClient(s)
		if err != nil {
			return
		}
		if !r.net.IsValid() || r.net != r.net.Masked() || r.net.Addr().Is4In6() || r.net.Addr().Zone() != "" {
			t.Fatalf("%q: network %v", s, r.net)
		}
		back, err := parseRelayClient(r.text)
		if err != nil || back.net != r.net {
			t.Fatalf("%q -> %q -> %v %v, want %v", s, r.text, back.net, err, r.net)
		}
		if a, err := netip.ParseAddr(strings.TrimSpace(s)); err == nil && a.Zone() == "" {
			if !r.net.IsSingleIP() || r.net.Addr() != a.Unmap() {
				t.Fatalf("%q, a whole address, is the network %v", s, r.net)
			}
		}
	})
}
