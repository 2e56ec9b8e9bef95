package safefile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/colinmarc/cdb"
)

func TestWriteCDB(t *testing.T) {
	p := filepath.Join(t.TempDir(), "map.cdb")
	err := WriteCDB(p, func(put func(k, v []byte) error) error {
		if err := put([]byte("a"), []byte("1")); err != nil {
			return err
		}
		return put([]byte("b"), nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	db, err := cdb.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := db.Get([]byte("a")); err != nil || string(v) != "1" {
		t.Fatalf("a = %q %v", v, err)
	}
	db.Close()
	// A failing fill leaves the old cdb as it was, and no temporary file.
	boom := errors.New("bad line 3")
	if err := WriteCDB(p, func(put func(k, v []byte) error) error { put([]byte("c"), nil); return boom }); err != boom {
		t.Fatalf("got %v, want the fill's error", err)
	}
	ents, _ := os.ReadDir(filepath.Dir(p))
	if len(ents) != 1 {
		t.Fatalf("left behind: %v", ents)
	}
	db, _ = cdb.Open(p)
	defer db.Close()
	if v, _ := db.Get([]byte("c")); v != nil {
		t.Fatal("the failed write replaced the cdb")
	}
}
