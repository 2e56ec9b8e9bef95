package relay

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"omail/lib/drac"
)

// A recent POP/IMAP login lets the address relay, after the other rules,
// with the reason "drac"; an expired one does not.
func TestClientMayRelayDRAC(t *testing.T) {
	ctl := controlDir(t, map[string]string{"me": "me.example", "relayclients": "10.0.0.:\n", "dracexpiry": "60\n"})
	home := filepath.Dir(ctl.Path)
	login := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tb, err := drac.Load(ctl)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"192.0.2.9", "10.0.0.5", "2001:db8::9"} {
		ip, _ := drac.ParseIP(s)
		if _, err := tb.Record(ip, login); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(home, "drac", "192.0.2.9")); err != nil {
		t.Fatal(err)
	}
	r, err := Load(ctl)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	now := login.Add(30 * time.Second)
	r.Now = func() time.Time { return now }
	for _, c := range []struct{ ip, why string }{
		{"192.0.2.9", "drac"}, {"2001:DB8::9", "drac"}, {"10.0.0.5", "relayclients 10.0.0."}, {"192.0.2.10", ""},
	} {
		if ok, why := r.ClientMayRelay(c.ip, ""); ok != (c.why != "") || why != c.why {
			t.Errorf("ClientMayRelay(%q) = %v %q, want %q", c.ip, ok, why, c.why)
		}
	}
	now = login.Add(61 * time.Second)
	if ok, why := r.ClientMayRelay("192.0.2.9", ""); ok {
		t.Errorf("expired record still relays (%s)", why)
	}
}
