package qmanager

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"omail/lib/drac"
)

// The daemon's sweep removes relay-after-POP records past dracexpiry and
// keeps fresh ones and strangers' files; no drac/ is no trouble.
func TestSweepDRAC(t *testing.T) {
	f := newFixture(t, map[string]string{"dracexpiry": "1800"})
	f.m.sweepDRAC() // no drac/ yet
	dir := filepath.Join(filepath.Dir(f.m.Q.Dir), drac.DirName)
	os.MkdirAll(dir, 0o755)
	for name, age := range map[string]time.Duration{"192.0.2.1": time.Hour, "2001:db8::1": time.Minute, "README": time.Hour} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, nil, 0o644)
		at := f.now.Add(-age)
		os.Chtimes(p, at, at)
	}
	f.m.sweepDRAC()
	var left []string
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		left = append(left, e.Name())
	}
	if strings.Join(left, " ") != "2001:db8::1 README" {
		t.Errorf("left in drac/: %v", left)
	}
	if !strings.Contains(f.log.String(), "drac: removed 1 expired record(s)") {
		t.Errorf("log: %s", f.log.String())
	}
}
