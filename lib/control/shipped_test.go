package control

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestShippedFilesMatchDefaults keeps the default control files that
// `make install` copies (../../control) equal to the defaults the code
// uses when a file is missing, so the two cannot drift apart.
func TestShippedFilesMatchDefaults(t *testing.T) {
	ents, err := os.ReadDir("../../control")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		name := e.Name()
		if strings.HasSuffix(name, ".md") {
			continue
		}
		n++
		d := &Dir{Path: "../../control"}
		got, err := d.Line(name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		want, ok := Defaults[name]
		if !ok {
			t.Errorf("control/%s is shipped but has no entry in Defaults", name)
			continue
		}
		if want == FromMe {
			t.Errorf("control/%s defaults to me and must not be shipped", name)
		}
		if got != want {
			t.Errorf("control/%s holds %q, Defaults says %q", name, got, want)
		}
		if _, err := os.Stat(filepath.Join("../../control", name)); err != nil {
			t.Error(err)
		}
	}
	if n == 0 {
		t.Error("no shipped control files found")
	}
}
