package cdbfile

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/colinmarc/cdb"
)

// A file too short to be a cdb is an error, and leaves no descriptor
// open; a real one opens and reads.
func TestOpen(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short.cdb")
	os.WriteFile(short, []byte("not a cdb"), 0o644)
	before := openFiles(t)
	for range 20 {
		if _, err := Open(short); err == nil {
			t.Fatal("a short file opened as a cdb")
		}
	}
	if after := openFiles(t); after != before {
		t.Errorf("%d descriptors open before, %d after 20 failed opens", before, after)
	}
	good := filepath.Join(dir, "good.cdb")
	w, err := cdb.Create(good)
	if err != nil {
		t.Fatal(err)
	}
	w.Put([]byte("k"), []byte("v"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := Open(good)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v, err := db.Get([]byte("k")); err != nil || string(v) != "v" {
		t.Errorf("Get: %q, %v", v, err)
	}
}

func openFiles(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
