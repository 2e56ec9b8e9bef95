package delivercmd

import (
	"os"
	"path/filepath"
	"testing"

	"omail/lib/control"
)

// SIGHUP rereads concurrencyremote and concurrencyslow into the
// connection limits every client shares; a file that does not parse
// keeps the bounds in force.
func TestReloadConnectionLimits(t *testing.T) {
	h := t.TempDir()
	dir := filepath.Join(h, "control")
	os.MkdirAll(dir, 0o755)
	set := func(name, v string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	set("concurrencyremote", "7")
	set("concurrencyslow", "3")
	cur, reload, err := remoteClient(control.New(h))
	if err != nil {
		t.Fatal(err)
	}
	first := cur.Load().Limiter
	check := func(what string, total, perHost, slow int) {
		t.Helper()
		l := cur.Load().Limiter
		if l != first {
			t.Fatalf("%s: the reloaded client has limits of its own", what)
		}
		if a, b, c := l.Bounds(); a != total || b != perHost || c != slow {
			t.Errorf("%s: bounds %d %d %d, want %d %d %d", what, a, b, c, total, perHost, slow)
		}
	}
	check("at start", 7, 5, 3)
	set("concurrencyremote", "2")
	set("concurrencyslow", "9")
	if err := reload(); err != nil {
		t.Fatal(err)
	}
	check("after SIGHUP", 2, 2, 2)
	set("concurrencyslow", "many")
	if err := reload(); err == nil {
		t.Fatal("concurrencyslow \"many\" was taken")
	}
	check("after a bad file", 2, 2, 2)
}
