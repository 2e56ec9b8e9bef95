package outbox

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"omail/lib/control"
	"omail/lib/outcome"
)

// The error branches of Put (the OCMP transport's commit) and Remove
// (omail-pack's): each failure is reported, so the queue keeps the
// message (a deferral), and leaves no entry behind.
func TestPutFailuresLeaveNoEntry(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(home, msg string) (msgPath string)
	}{
		{"outbox is a file", func(home, msg string) string {
			os.WriteFile(filepath.Join(home, Dir), nil, 0o640)
			return msg
		}},
		{"held/ is a file", func(home, msg string) string {
			os.MkdirAll(Path(home, "k1"), 0o750)
			os.WriteFile(filepath.Join(Path(home, "k1"), HeldDir), nil, 0o640)
			return msg
		}},
		{"message missing", func(home, msg string) string { return msg + ".gone" }},
		{"message unreadable (a directory)", func(home, msg string) string { return filepath.Dir(msg) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := t.TempDir()
			msg := tc.setup(home, msgFile(t, "Subject: x\n\nbody\n"))
			res := Deliver(home, "k1", "1700.5.42.1", msg, "a@b", []string{"c@d"}, nil)
			if res.Status != outcome.Temp {
				t.Errorf("Deliver: %+v, want a deferral", res)
			}
			ents, _ := os.ReadDir(Path(home, "k1"))
			for _, e := range ents {
				if e.Name() != HeldDir {
					t.Errorf("left %s in the outbox", e.Name())
				}
			}
		})
	}
}

func TestReadErrors(t *testing.T) {
	home := t.TempDir()
	if _, err := Open(home, "k1", "1700.5.42.1"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open of a missing entry: %v", err)
	}
	os.MkdirAll(filepath.Join(home, Dir), 0o750)
	os.WriteFile(Path(home, "k1"), nil, 0o640)
	if _, err := List(home, "k1"); err == nil {
		t.Error("List of an endpoint that is a file succeeded")
	}
	os.RemoveAll(filepath.Join(home, Dir))
	os.WriteFile(filepath.Join(home, Dir), nil, 0o640)
	if _, err := Endpoints(home); err == nil {
		t.Error("Endpoints with outbox a file succeeded")
	}
	os.MkdirAll(filepath.Join(home, "control", "ocmproutes"), 0o750)
	if _, _, err := Route(control.New(home), "a@b"); err == nil {
		t.Error("Route with an unreadable ocmproutes succeeded")
	}
}

// Remove reports a name it cannot remove (here a directory that is not
// empty), so omail-pack's journal stays and the next pass repeats it.
func TestRemoveFailure(t *testing.T) {
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(Path(home, "k1"), "1700.5.42.1", "x"), 0o750); err != nil {
		t.Fatal(err)
	}
	err := Remove(home, "k1", []string{"1700.5.42.0", "1700.5.42.1"})
	if err == nil || !strings.Contains(err.Error(), "1700.5.42.1") {
		t.Errorf("Remove: %v", err)
	}
}
