package control

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A Dir made by New reads a settled file once and uses its lines until
// the file changes; a file changed within settle is read at every use.
func TestCacheUntilChanged(t *testing.T) {
	home := t.TempDir()
	d := New(home)
	os.MkdirAll(d.Path, 0o755)
	p := filepath.Join(d.Path, "concurrencylocal")
	write := func(v string, age time.Duration) {
		t.Helper()
		if err := os.WriteFile(p, []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if age > 0 {
			old := time.Now().Add(-age)
			if err := os.Chtimes(p, old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
	check := func(want int64, reads int) {
		t.Helper()
		n, err := d.Int("concurrencylocal")
		if err != nil || n != want {
			t.Fatalf("Int = %d, %v; want %d", n, err, want)
		}
		if d.cache.reads != reads {
			t.Fatalf("%d reads, want %d", d.cache.reads, reads)
		}
	}
	// Just written: read at each use.
	write("10", 0)
	check(10, 1)
	check(10, 2)
	// Settled (its times in the past; the change time is still now, so
	// this also shows that a recent chmod or rename is not trusted).
	write("11", time.Minute)
	check(11, 3)
	check(11, 4)
	// Age the change time too: the file is left alone long enough that
	// both times are old.
	d.cache.m = nil
	fakeSettled(t, d, p)
	check(11, 4)
	check(11, 4)
	// A hand edit of the same size is noticed at the next use.
	write("12", 0)
	check(12, 5)
	// Removed: the default, at once; a stat says so without an open.
	os.Remove(p)
	check(10, 5)
}

// fakeSettled puts p in d's cache as if read when settled: ctime cannot
// be set back, so the entry is made from the stat directly.
func fakeSettled(t *testing.T, d *Dir, p string) {
	t.Helper()
	lines, ok, err := readLines(p, "concurrencylocal")
	if err != nil || !ok {
		t.Fatal(err)
	}
	id, err := statID(p)
	if err != nil {
		t.Fatal(err)
	}
	d.cache.m = map[string]cachedFile{p: {id: id, lines: lines}}
}

// A Dir that is not made by New reads at every use, as before.
func TestNoCacheWithoutNew(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "maxrcpt"), []byte("7\n"), 0o644)
	d := &Dir{Path: dir}
	for range 2 {
		if n, err := d.Int("maxrcpt"); n != 7 || err != nil {
			t.Fatalf("Int = %d, %v", n, err)
		}
	}
	if d.cache != nil {
		t.Error("a literal Dir has a cache")
	}
}
