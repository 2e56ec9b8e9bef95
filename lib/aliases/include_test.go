package aliases

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"omail/lib/control"
)

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// :include: lists are read at lookup, one level deep, with the owner
// and mode checks; a problem defers only the alias that includes it.
func TestInclude(t *testing.T) {
	dir := t.TempDir()
	ctl := control.New(dir)
	os.MkdirAll(ctl.Path, 0o755)
	list := filepath.Join(dir, "staff.list")
	writeFile(t, list, "# the staff\nann, bob@example.org\n\n\"|echo x, y\"\n/srv/box\n", 0o644)
	writeFile(t, ctl.File(File), "staff: :include:"+list+", boss\nother: carl\nnested: :include:"+dir+"/nested\nmissing: :include:/nonexistent/x\nempty: :include:"+dir+"/empty\nopen: :include:"+dir+"/open\n", 0o644)
	writeFile(t, filepath.Join(dir, "nested"), "a, :include:"+list+"\n", 0o644)
	writeFile(t, filepath.Join(dir, "empty"), "# nobody yet\n", 0o644)
	writeFile(t, filepath.Join(dir, "open"), "a\n", 0o646)

	got, ok, err := LookupIn(ctl, "Staff")
	want := []Target{{Forward, "ann"}, {Forward, "bob@example.org"}, {Program, "echo x, y"}, {Mbox, "/srv/box"}, {Forward, "boss"}}
	if err != nil || !ok || !reflect.DeepEqual(got, want) {
		t.Fatalf("staff: %+v %v %v", got, ok, err)
	}
	if got, ok, err := LookupIn(ctl, "other"); err != nil || !ok || len(got) != 1 {
		t.Errorf("other: %+v %v %v", got, ok, err)
	}
	for name, text := range map[string]string{"nested": "inside an included file", "missing": "no such file", "empty": "lists nobody", "open": "writable by others"} {
		if _, ok, err := LookupIn(ctl, name); ok || err == nil || !strings.Contains(err.Error(), text) {
			t.Errorf("%s: %v %v, want an error with %q", name, ok, err, text)
		}
	}
	if _, ok, err := LookupIn(ctl, "nobody"); ok || err != nil {
		t.Errorf("nobody: %v %v", ok, err)
	}
}

// An included file owned by neither root nor the aliases file's owner is
// refused: whoever writes it chooses what runs as that owner.
func TestIncludeOwner(t *testing.T) {
	list := filepath.Join(t.TempDir(), "list")
	writeFile(t, list, "ann\n", 0o644)
	me := os.Getuid()
	owner := me + 1
	if me == 0 {
		if err := os.Chown(list, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		owner = 1
	}
	if _, err := readInclude(list, owner); err == nil || !strings.Contains(err.Error(), "neither root nor") {
		t.Fatalf("foreign owner: %v", err)
	}
	if me == 0 {
		owner = 65534
	} else {
		owner = me
	}
	if got, err := readInclude(list, owner); err != nil || len(got) != 1 {
		t.Fatalf("the aliases owner's file: %+v %v", got, err)
	}
}
