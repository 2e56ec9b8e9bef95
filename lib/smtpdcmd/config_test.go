package smtpdcmd

import (
	"os"
	"path/filepath"
	"testing"

	"omail/lib/control"
)

func TestConfigCache(t *testing.T) {
	env := setup(t, map[string]string{"smtpgreeting": "one"})
	c := &configCache{ctl: control.New(env.Dir())}
	a, err := c.get()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := c.get()
	if a != b || a.greeting != "one" {
		t.Fatalf("unchanged files read again (%p %p) or wrong: %q", a, b, a.greeting)
	}
	// An edit is noticed without a signal; the sessions on the old
	// config keep it, and its files close when the last one is done.
	os.WriteFile(filepath.Join(env.Dir(), "control", "smtpgreeting"), []byte("two\n"), 0o644)
	n, _ := c.get()
	if n == a || n.greeting != "two" || !a.stale {
		t.Fatalf("edit not noticed: %q, old stale %v", n.greeting, a.stale)
	}
	c.release(a)
	if a.refs != 1 {
		t.Errorf("refs %d", a.refs)
	}
	c.release(b)
	c.release(n)
	// A new file (rcpthosts did not exist) is a change too.
	os.WriteFile(filepath.Join(env.Dir(), "control", "rcpthosts"), []byte("new.example\n"), 0o644)
	m, _ := c.get()
	if m == n || !n.stale {
		t.Fatal("new control file not noticed")
	}
	if ok, _ := m.rules.Accepts("new.example"); !ok {
		t.Error("new rcpthosts not in effect")
	}
	c.release(m)
	// SIGHUP: read again though nothing changed.
	c.drop()
	r, _ := c.get()
	if r == m || !m.stale {
		t.Error("drop did not make get read the files again")
	}
	c.release(r)
	// A broken file: an error for this connection, no stale config.
	os.WriteFile(filepath.Join(env.Dir(), "control", "maxrcpt"), []byte("many\n"), 0o644)
	if _, err := c.get(); err == nil {
		t.Error("broken maxrcpt read without an error")
	}
}
