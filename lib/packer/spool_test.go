package packer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"omail/lib/mbox"
)

// spoolAdd delivers a message to the mbox at path as a deliverer that
// takes the locks does. It may run in a goroutine: it reports with
// t.Error.
func spoolAdd(t *testing.T, path, sender, body string) {
	a, err := mbox.Open(path)
	if err != nil {
		t.Error(err)
		return
	}
	if err := a.Add(sender, nil, strings.NewReader(body), time.Unix(0, 0)); err != nil {
		t.Error(err)
	}
	if err := a.Commit(); err != nil {
		t.Error(err)
	}
}

// rogueAppend appends s to the mbox at path as a writer that ignores
// the locks does.
func rogueAppend(path, s string) {
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(s)
	f.Close()
}

func TestWholeMessages(t *testing.T) {
	const m1 = "From a@b Thu Jan  1 00:00:00 1970\nSubject: 1\n\nbody\n\n"
	long := strings.Repeat("x", 64<<10-3) + "\n" // puts a From_ line across a window's edge
	for _, c := range []struct {
		name, box string
		want      int
	}{
		{"empty", "", 0},
		{"whole", m1 + m1, 2 * len(m1)},
		{"one unfinished", m1[:20], 0},
		{"one without its blank line", m1[:len(m1)-1], 0},
		{"an unfinished second", m1 + m1[:30], len(m1)},
		{"a torn From_ line", m1 + "From rog", len(m1)},
		{"a From_ line only", m1 + "From rogue@x Mon Jan  1 00:00:00 2024\n", len(m1)},
		{"not an mbox", "garbage\n", len("garbage\n")},
		{"across a window's edge", m1 + long + "\n" + m1[:10], len(m1) + len(long) + 1},
		{"far back", m1 + m1[:40] + strings.Repeat("y\n", 100000), len(m1)},
	} {
		f := filepath.Join(t.TempDir(), "mbox")
		os.WriteFile(f, []byte(c.box), 0o600)
		fd, _ := os.Open(f)
		got, err := wholeMessages(fd, int64(len(c.box)))
		fd.Close()
		if err != nil || got != int64(c.want) {
			t.Errorf("%s: %d, %v; want %d", c.name, got, err, c.want)
		}
	}
}

// A writer that ignores the locks is half-way through a message when
// omail-pack measures the mbox: only the whole messages before it are
// packed, the unfinished one stays at the front, whole once its writer
// is done, and the next pass packs it and what came after.
func TestMboxUnfinishedTail(t *testing.T) {
	p, h := setup(t)
	os.WriteFile(filepath.Join(h, "control", "proxyscanmail"), []byte("1\n"), 0o644)
	path := filepath.Join(h, "spool", "bob")
	add := func(sender, body string) { spoolAdd(t, path, sender, body) }
	rogue := func(s string) { rogueAppend(path, s) }
	add("one@x", "Subject: 1\n")
	rogue("From rogue@x Thu Jan  1 00:00:00 1970\nSubject: rogue\n") // its first write(2)
	p.Crash = func(point string) {
		if point == "pack-mbox-measured" {
			rogue("\nrest of the rogue body\n\n") // its second
		}
	}
	if err := p.Pass(); err != nil {
		t.Fatal(err)
	}
	if got := readBundles(t, h, "bob"); strings.Join(got, "|") != "one@x>bob:Subject: 1\n" {
		t.Errorf("first pass packed %q", got)
	}
	if left, _ := os.ReadFile(path); string(left) != "From rogue@x Thu Jan  1 00:00:00 1970\nSubject: rogue\n\nrest of the rogue body\n\n" {
		t.Errorf("mbox after the first pass: %q", left)
	}
	p.Crash = nil
	add("two@x", "Subject: 2\n")
	if err := p.Pass(); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(readBundles(t, h, "bob"), "|")
	for _, want := range []string{"one@x>bob:Subject: 1\n", "rogue@x>bob:Subject: rogue\n\nrest of the rogue body\n", "two@x>bob:Subject: 2\n"} {
		if strings.Count(got, want) != 1 {
			t.Errorf("bundles hold %q, want %q once", got, want)
		}
	}
	if fi, _ := os.Stat(path); fi.Size() != 0 {
		t.Errorf("mbox holds %d bytes", fi.Size())
	}
}
