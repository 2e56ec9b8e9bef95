package crashpoint

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
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

// Op reaches the point before the operation and name+Done after it; a
// hook that is a plain function never injects a fault.
func TestOpPoints(t *testing.T) {
	var got []string
	h := Hook(func(p string) { got = append(got, p) })
	ran := false
	if err := h.Op("x-fsync", func() error { ran = true; return nil }); err != nil || !ran {
		t.Fatalf("Op: %v, ran %v", err, ran)
	}
	if len(got) != 3 || got[0] != "x-fsync" || got[2] != "x-fsync-done" {
		t.Errorf("points %q", got)
	}
	// A failed operation does not reach the point after it.
	got = nil
	if err := h.Op("x-link", func() error { return syscall.EEXIST }); err != syscall.EEXIST {
		t.Errorf("Op: %v", err)
	}
	if got[len(got)-1] == "x-link-done" {
		t.Errorf("points %q", got)
	}
	var none Hook
	if err := none.Op("x", func() error { return nil }); err != nil {
		t.Error(err)
	}
}

// OMAIL_FAULT=name:N=ERRNO fails the Nth reach of the operation only,
// without running it, with an error that is the errno.
func TestFaultNth(t *testing.T) {
	h, err := Parse("", "", "", "x-fsync:2=ENOSPC,y-link=EIO")
	if err != nil {
		t.Fatal(err)
	}
	runs := 0
	op := func() error { runs++; return nil }
	if err := h.Op("x-fsync", op); err != nil {
		t.Fatalf("first reach: %v", err)
	}
	err = h.Op("x-fsync", op)
	if !errors.Is(err, syscall.ENOSPC) || runs != 1 {
		t.Fatalf("second reach: %v, %d runs", err, runs)
	}
	var f interface{ Temporary() bool }
	if !errors.As(err, &f) || !f.Temporary() {
		t.Error("an injected fault is not temporary")
	}
	if err := h.Op("x-fsync", op); err != nil || runs != 2 {
		t.Fatalf("third reach: %v, %d runs", err, runs)
	}
	if err := h.Op("y-link", op); !errors.Is(err, syscall.EIO) {
		t.Fatalf("y-link: %v", err)
	}
	h.At("y-link") // At never injects
}

// A write fault writes K bytes, then fails: the file is torn.
func TestFaultWriter(t *testing.T) {
	h, err := Parse("", "", "", "w-write=ENOSPC@5")
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	w := h.Writer("w-write", &b)
	if n, err := w.Write([]byte("abc")); n != 3 || err != nil {
		t.Fatalf("first write %d %v", n, err)
	}
	if n, err := w.Write([]byte("defgh")); n != 2 || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("second write %d %v", n, err)
	}
	if b.String() != "abcde" {
		t.Errorf("written %q", b.String())
	}
	// The next file is written whole.
	var c bytes.Buffer
	if _, err := h.Writer("w-write", &c).Write([]byte("whole")); err != nil || c.String() != "whole" {
		t.Errorf("second file: %v %q", err, c.String())
	}
}

func TestFaultSpecErrors(t *testing.T) {
	for _, bad := range []string{"x", "x=EWHAT", "x=EIO@-1", "x=EIO@z"} {
		if _, err := Parse("", "", "", bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if h, err := Parse("", "", "", ""); h != nil || err != nil {
		t.Errorf("empty spec: %v %v", h != nil, err)
	}
}
