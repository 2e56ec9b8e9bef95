package maildir

import (
	"omail/lib/crashpoint"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func newMaildir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"tmp", "new", "cur"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// A named delivery made again finds its file in new/, or in cur/ where a
// reader moved it (with or without flags), and writes nothing more.
func TestDeliverNamedOnce(t *testing.T) {
	for _, move := range []func(dir, name string){
		func(dir, name string) {},
		func(dir, name string) {
			os.Rename(filepath.Join(dir, "new", name), filepath.Join(dir, "cur", name+":2,S"))
		},
		func(dir, name string) { os.Rename(filepath.Join(dir, "new", name), filepath.Join(dir, "cur", name)) },
	} {
		dir := newMaildir(t)
		name := NameFor(1764032705, "M000001P2Q3Eabc")
		// Names that only begin like ours are other messages.
		os.WriteFile(filepath.Join(dir, "cur", name+"x:2,S"), nil, 0o600)
		already, err := DeliverNamed(dir, name, false, []string{"Delivered-To: a@b"}, strings.NewReader("hi\n"), nil)
		if err != nil || already {
			t.Fatalf("first delivery: %v %v", already, err)
		}
		move(dir, name)
		already, err = DeliverNamed(dir, name, true, []string{"Delivered-To: a@b"}, strings.NewReader("hi\n"), nil)
		if err != nil || !already {
			t.Fatalf("second delivery: already %v, %v", already, err)
		}
		n := 0
		for _, d := range []string{"new", "cur", "tmp"} {
			es, _ := os.ReadDir(filepath.Join(dir, d))
			n += len(es)
		}
		if n != 2 {
			t.Fatalf("%d files", n)
		}
	}
}

// What a crashed attempt left in tmp/ under the name is written over; a
// file already in new/ under the name is this delivery, made before,
// even on an attempt that did not look (the link refuses to overwrite).
func TestDeliverNamedAfterCrash(t *testing.T) {
	dir := newMaildir(t)
	name := NameFor(1, "E1")
	os.WriteFile(filepath.Join(dir, "tmp", name), []byte("torn"), 0o600)
	var points []string
	already, err := DeliverNamed(dir, name, true, nil, strings.NewReader("whole\n"), func(p string) {
		if !crashpoint.Asking(p) {
			points = append(points, p)
		}
	})
	if err != nil || already {
		t.Fatalf("%v %v", already, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "new", name)); string(b) != "whole\n" {
		t.Fatalf("new/: %q", b)
	}
	if _, err := os.Stat(filepath.Join(dir, "tmp", name)); err == nil {
		t.Fatal("tmp/ file left")
	}
	want := "maildir-created maildir-torn maildir-written maildir-fsync maildir-fsync-done maildir-synced maildir-link maildir-link-done maildir-linked maildir-dirsync maildir-dirsync-done maildir-dirsynced maildir-unlink-tmp maildir-unlink-tmp-done"
	if got := strings.Join(points, " "); got != want {
		t.Fatalf("points %q, want %q", got, want)
	}
	already, err = DeliverNamed(dir, name, false, nil, strings.NewReader("again\n"), nil)
	if err != nil || !already {
		t.Fatalf("%v %v", already, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "new", name)); string(b) != "whole\n" {
		t.Fatalf("new/ overwritten: %q", b)
	}
	if _, err := DeliverNamed(dir, "a/b", false, nil, strings.NewReader(""), nil); err == nil {
		t.Fatal("a name with a slash was taken")
	}
}
