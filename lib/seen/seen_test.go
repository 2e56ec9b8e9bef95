package seen

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"omail/lib/bundle"
)

func open(t *testing.T) (*Store, string) {
	t.Helper()
	h := t.TempDir()
	s, err := Open(h, func() time.Time { return time.Unix(1800000000, 0) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, filepath.Join(h, Dir)
}

func TestRecordAndProgress(t *testing.T) {
	s, dir := open(t)
	id := bundle.NewID()
	if s.Done(id) {
		t.Fatal("a new id is done")
	}
	if _, err := s.Progress(id); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Progress of a new id: %v", err)
	}
	if err := s.SetProgress(id, []byte("3\n")); err != nil {
		t.Fatal(err)
	}
	if p, err := s.Progress(id); err != nil || string(p) != "3\n" {
		t.Errorf("Progress = %q, %v", p, err)
	}
	if s.Done(id) {
		t.Error("done with only progress")
	}
	if err := s.Record(id, "kiosk", "bob", 7); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, id)); string(got) != "kiosk bob 7 1800000000\n" {
		t.Errorf("record %q", got)
	}
	if !s.Done(id) {
		t.Error("not done after Record")
	}
	for i := 0; i < 2; i++ { // clearing nothing is fine
		if err := s.ClearProgress(id); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, id+".part")); !os.IsNotExist(err) {
		t.Error("progress left")
	}
}

func TestExpire(t *testing.T) {
	s, seen := open(t)
	old, fresh := bundle.NewID(), bundle.NewID()
	for _, id := range []string{old, fresh, fresh + ".part"} {
		os.WriteFile(filepath.Join(seen, id), nil, 0o644)
	}
	now := s.now()
	os.Chtimes(filepath.Join(seen, old), now.Add(-Horizon-time.Hour), now.Add(-Horizon-time.Hour))
	os.WriteFile(filepath.Join(seen, old+".part"), nil, 0o644)
	os.Chtimes(filepath.Join(seen, old+".part"), now.Add(-2*Horizon), now.Add(-2*Horizon))
	if n := s.Expire(); n != 2 {
		t.Errorf("Expire = %d, want 2", n)
	}
	for _, n := range []string{old, old + ".part"} {
		if _, err := os.Stat(filepath.Join(seen, n)); !os.IsNotExist(err) {
			t.Errorf("%s kept", n)
		}
	}
	for _, n := range []string{fresh, fresh + ".part"} {
		if _, err := os.Stat(filepath.Join(seen, n)); err != nil {
			t.Errorf("%s removed", n)
		}
	}
	// within a day it does not scan again
	os.WriteFile(filepath.Join(seen, old), nil, 0o644)
	os.Chtimes(filepath.Join(seen, old), now.Add(-2*Horizon), now.Add(-2*Horizon))
	if n := s.Expire(); n != 0 {
		t.Errorf("Expire = %d within a day", n)
	}
	if _, err := os.Stat(filepath.Join(seen, old)); err != nil {
		t.Error("expired again within a day")
	}
}

// A Store holds the lock from Open to Close.
func TestOpenLocks(t *testing.T) {
	h := t.TempDir()
	s, err := Open(h, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(h, Dir, ".lock"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err == nil {
		t.Fatal("the lock is free while a Store is open")
	}
	s.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatalf("the lock is held after Close: %v", err)
	}
}
