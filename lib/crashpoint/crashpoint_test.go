package crashpoint

import (
	"os"
	"path/filepath"
	"testing"

	"omail/lib/home"
)

func TestNoHooks(t *testing.T) {
	if h := New(home.Env{"PATH=/usr/bin:/bin"}); h != nil {
		t.Error("hooks without OMAIL_CRASHPOINT or OMAIL_HOOKPOINT")
	}
	var h Hook
	h.At("anything") // a nil Hook does nothing
}

// The hook command runs at its point, and only there; a crash point
// elsewhere is not reached.
func TestHookCommand(t *testing.T) {
	out := filepath.Join(t.TempDir(), "ran")
	h := New(home.Env{"OMAIL_HOOKPOINT=here", "OMAIL_HOOKCMD=echo x >>" + out, "OMAIL_CRASHPOINT=elsewhere:2", "PATH=/usr/bin:/bin"})
	h.At("there")
	if _, err := os.Stat(out); err == nil {
		t.Fatal("the hook ran at another point")
	}
	h.At("here")
	h.At("here")
	h.At("elsewhere") // the first of two: no crash
	if got, _ := os.ReadFile(out); string(got) != "x\nx\n" {
		t.Errorf("hook output %q", got)
	}
}
