package drac

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"omail/lib/control"
)

func TestParseIP(t *testing.T) {
	good := map[string]string{
		"127.0.0.3": "127.0.0.3", "::1": "::1", "0:0:0:0:0:0:0:1": "::1", "::FFFF:127.0.0.6": "127.0.0.6",
		"2001:DB8::1": "2001:db8::1",
	}
	for in, want := range good {
		a, err := ParseIP(in)
		if err != nil || a.String() != want {
			t.Errorf("ParseIP(%q) = %v %v, want %s", in, a, err, want)
		}
	}
	for _, in := range []string{"", "x", "1.2.3", "127.000.0.1", "../etc/passwd", "127.0.0.1/8", " 127.0.0.1",
		"127.0.0.1 ", "fe80::1%eth0", "[::1]", "1.2.3.4\x00", "1.2.3.4/../x"} {
		if a, err := ParseIP(in); err == nil {
			t.Errorf("ParseIP(%q) = %v, want an error", in, a)
		}
	}
}

// FuzzParseIP: what is accepted names a record with no path separator
// and no dot-dot, and parses back to itself.
func FuzzParseIP(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "::1", "::ffff:1.2.3.4", "../x", "fe80::1%eth0", "1.2.3.4/5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseIP(s)
		if err != nil {
			return
		}
		name := a.String()
		if strings.ContainsAny(name, "/\x00%") || name == "." || name == ".." || strings.HasPrefix(name, ".") {
			t.Fatalf("%q names %q", s, name)
		}
		b, err := ParseIP(name)
		if err != nil || b != a {
			t.Fatalf("%q -> %q -> %v %v", s, name, b, err)
		}
	})
}

func TestRecordAllowsExpires(t *testing.T) {
	home := t.TempDir()
	tb, err := New(home, "600")
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	ip, _ := ParseIP("::ffff:127.0.0.3")
	if _, err := tb.Record(ip, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(home, "drac", "127.0.0.3")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		ip   string
		at   time.Duration
		want bool
	}{
		{"127.0.0.3", 0, true}, {"::ffff:127.0.0.3", 599 * time.Second, true}, {"127.0.0.3", 600 * time.Second, false},
		{"127.0.0.3", -599 * time.Second, true}, {"127.0.0.3", -600 * time.Second, false},
		{"127.0.0.4", 0, false}, {"", 0, false}, {"../drac/127.0.0.3", 0, false},
	} {
		if got := tb.Allows(c.ip, t0.Add(c.at)); got != c.want {
			t.Errorf("Allows(%q) at +%v = %v, want %v", c.ip, c.at, got, c.want)
		}
	}
	// A later login from another address prunes the expired record, and
	// leaves alone what is not a record.
	os.WriteFile(filepath.Join(home, "drac", "README"), nil, 0o644)
	other, _ := ParseIP("::1")
	n, err := tb.Record(other, t0.Add(time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("Record pruned %d %v, want 1", n, err)
	}
	ents, _ := os.ReadDir(filepath.Join(home, "drac"))
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "::1 README" {
		t.Errorf("left %v", names)
	}
	// DRAC off: dracexpiry 0.
	off, _ := New(home, "0")
	if off.Allows("::1", t0.Add(time.Hour)) {
		t.Error("dracexpiry 0 still allows")
	}
}

func TestLoad(t *testing.T) {
	home := t.TempDir()
	ctl := control.New(home)
	os.MkdirAll(ctl.Path, 0o755)
	tb, err := Load(ctl)
	if err != nil || tb.Expiry != DefaultExpiry || tb.Dir != filepath.Join(home, "drac") {
		t.Fatalf("default: %+v %v", tb, err)
	}
	os.WriteFile(ctl.File("dracexpiry"), []byte("90\n"), 0o644)
	if tb, err = Load(ctl); err != nil || tb.Expiry != 90*time.Second {
		t.Fatalf("90: %+v %v", tb, err)
	}
	os.WriteFile(ctl.File("dracexpiry"), []byte("soon\n"), 0o644)
	if _, err = Load(ctl); err == nil {
		t.Fatal("a bad dracexpiry read")
	}
}

// A login from an address whose old record has expired renames a fresh
// record over it while another -drac (or omail-deliver's sweep) prunes.
// Prune saw the old, expired file; it must not then remove the name,
// which is now the fresh record of the login that just happened.
func TestPruneKeepsRecordRenamedMeanwhile(t *testing.T) {
	tb, err := New(t.TempDir(), "1800")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(tb.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ip, _ := ParseIP("192.0.2.7")
	name := filepath.Join(tb.Dir, ip.String())
	// Two sweepers, each pruning all the time.
	const pruners = 2
	stop := make(chan struct{})
	done := make(chan error, pruners)
	for range pruners {
		go func() {
			for {
				select {
				case <-stop:
					done <- nil
					return
				default:
				}
				if _, err := tb.Prune(time.Now()); err != nil {
					done <- err
					return
				}
			}
		}()
	}
	const logins = 800
	lost := 0
	for i := 0; i < logins; i++ {
		// The address's record from yesterday, expired, not swept yet.
		old := time.Now().Add(-24 * time.Hour)
		if err := os.WriteFile(name, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(name, old, old) // may race with a Prune that removed it: then it is simply gone
		now := time.Now()
		if _, err := tb.Record(ip, now); err != nil {
			t.Fatal(err)
		}
		if !tb.Allows(ip.String(), now) {
			lost++
		}
	}
	close(stop)
	for range pruners {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d fresh records removed by a concurrent Prune", lost, logins)
	}
}

// Anyone who can read drac/ can flock it. Held by someone else, the
// lock must not hang the POP/IMAP server's login hook or omail-deliver's
// sweep: Record still records, Prune skips its pass.
func TestLockHeldByAnotherDoesNotHang(t *testing.T) {
	tb, err := New(t.TempDir(), "1800")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(tb.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	old := lockWait
	lockWait = time.Millisecond
	defer func() { lockWait = old }()
	d, err := os.Open(tb.Dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := unix.Flock(int(d.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	ip, _ := ParseIP("192.0.2.7")
	if _, err := tb.Record(ip, time.Now()); err != nil {
		t.Fatalf("Record with the lock held elsewhere: %v", err)
	}
	if !tb.Allows("192.0.2.7", time.Now()) {
		t.Error("the record was not written")
	}
	expired := filepath.Join(tb.Dir, "192.0.2.8")
	os.WriteFile(expired, nil, 0o644)
	then := time.Now().Add(-2 * time.Hour)
	os.Chtimes(expired, then, then)
	if n, err := tb.Prune(time.Now()); n != 0 || err != nil {
		t.Errorf("Prune with the lock held elsewhere: %d, %v; want it skipped", n, err)
	}
}
