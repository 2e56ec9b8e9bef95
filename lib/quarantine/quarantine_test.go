package quarantine

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"omail/lib/crashpoint"
	"omail/lib/crashpoint/faulttest"
)

func TestMove(t *testing.T) {
	h := t.TempDir()
	from := filepath.Join(t.TempDir(), "bad")
	os.WriteFile(from, []byte("damaged"), 0o644)
	to, err := Move(h, from, "bad.1")
	if err != nil || to != filepath.Join(h, Dir, "bad.1") {
		t.Fatalf("Move = %q, %v", to, err)
	}
	if got, _ := os.ReadFile(to); string(got) != "damaged" {
		t.Errorf("quarantined file holds %q", got)
	}
	if _, err := os.Stat(from); !os.IsNotExist(err) {
		t.Error("the original is still there")
	}
	if _, err := Move(h, from, "bad.2"); err == nil {
		t.Error("moving a missing file succeeded")
	}
	// A home where the quarantine cannot be made: an error, the file stays.
	os.WriteFile(from, []byte("damaged"), 0o644)
	notDir := filepath.Join(h, "file")
	os.WriteFile(notDir, nil, 0o644)
	if _, err := Move(notDir, from, "bad.3"); err == nil {
		t.Error("no error without a quarantine directory")
	}
	if _, err := os.Stat(from); err != nil {
		t.Error("the original is gone after a failed move")
	}
}

// A disk error at the move fails it and leaves both places as they
// were; the next attempt moves the file.
func TestMoveFaults(t *testing.T) {
	saved := Crash
	t.Cleanup(func() { Crash = saved })
	faulttest.Run(t, func(t *testing.T) faulttest.Case {
		h := t.TempDir()
		from := filepath.Join(h, "in", "bad")
		os.MkdirAll(filepath.Dir(from), 0o755)
		os.MkdirAll(filepath.Join(h, Dir), 0o755)
		os.WriteFile(from, []byte("damaged"), 0o644)
		return faulttest.Case{Dir: h, Try: func(hk crashpoint.Hook) error {
			Crash = func() crashpoint.Hook { return hk }
			_, err := Move(h, from, "bad.1")
			return err
		}}
	}, faulttest.Only("quarantine-rename")...)
}

// Across file systems (EXDEV from the rename, injected) Move copies and
// removes: a disk error at the copy leaves both places as they were.
func TestMoveCopyFaults(t *testing.T) {
	saved := Crash
	t.Cleanup(func() { Crash = saved })
	for _, spec := range []string{"quarantine-copy=ENOSPC", "quarantine-copy=EIO"} {
		h := t.TempDir()
		from := filepath.Join(h, "in", "bad")
		os.MkdirAll(filepath.Dir(from), 0o755)
		os.MkdirAll(filepath.Join(h, Dir), 0o755)
		os.WriteFile(from, []byte("damaged"), 0o644)
		before := faulttest.Tree(t, h)
		hk, err := crashpoint.Parse("", "", "", "quarantine-rename=EXDEV,quarantine-rename:2=EXDEV,"+spec)
		if err != nil {
			t.Fatal(err)
		}
		Crash = func() crashpoint.Hook { return hk }
		var f *crashpoint.Fault
		if _, err := Move(h, from, "bad.1"); !errors.As(err, &f) || f.Point != "quarantine-copy" {
			t.Fatalf("%s: %v", spec, err)
		}
		if d := faulttest.Diff(before, faulttest.Tree(t, h)); d != "" {
			t.Errorf("%s changed the files:\n%s", spec, d)
		}
		// Still across file systems, the disk healthy: copied, removed.
		if to, err := Move(h, from, "bad.1"); err != nil {
			t.Fatal(err)
		} else if b, _ := os.ReadFile(to); string(b) != "damaged" {
			t.Errorf("copy holds %q", b)
		}
		if _, err := os.Stat(from); err == nil {
			t.Error("the original is left")
		}
	}
}

// Move never replaces a file in the quarantine: a second file under a
// name already taken gets name.2, a third name.3; also when it is
// copied across file systems.
func TestMoveNeverReplaces(t *testing.T) {
	saved := Crash
	t.Cleanup(func() { Crash = saved })
	for _, faults := range []string{"", "quarantine-rename=EXDEV,quarantine-rename:2=EXDEV,quarantine-rename:3=EXDEV"} {
		hk, err := crashpoint.Parse("", "", "", faults)
		if err != nil {
			t.Fatal(err)
		}
		Crash = func() crashpoint.Hook { return hk }
		h := t.TempDir()
		from := filepath.Join(t.TempDir(), "bad")
		var got []string
		for _, content := range []string{"one", "two", "three"} {
			os.WriteFile(from, []byte(content), 0o644)
			to, err := Move(h, from, "bad.1")
			if err != nil {
				t.Fatalf("%q: %v", faults, err)
			}
			got = append(got, filepath.Base(to))
		}
		want := []string{"bad.1", "bad.1.2", "bad.1.3"}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%q: moved to %v, want %v", faults, got, want)
		}
		for i, content := range []string{"one", "two", "three"} {
			if b, _ := os.ReadFile(filepath.Join(h, Dir, want[i])); string(b) != content {
				t.Errorf("%q: %s holds %q, want %q", faults, want[i], b, content)
			}
		}
		if ents, _ := os.ReadDir(filepath.Join(h, Dir)); len(ents) != 3 {
			t.Errorf("%q: %d files in the quarantine", faults, len(ents))
		}
	}
}
