// Package faulttest runs a package's unit tests of injected disk
// faults: at each file operation (crashpoint.FileOp) and write
// (crashpoint.Write) point of the package, ENOSPC and EIO, the operation
// must fail with a temporary error, leave the files byte-identical to
// before, and succeed once the fault is gone. Only tests import it.
package faulttest

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"omail/lib/crashpoint"
)

// Case is one fresh state to break: Dir is the tree that must not
// change, Try the operation, run with the hooks that inject the fault
// (and then with nil).
type Case struct {
	Dir string
	Try func(h crashpoint.Hook) error
}

// Run iterates over the points of crashpoint.Points whose name starts
// with one of prefixes and that take faults, calling fresh for a new
// state for each fault. Write points fail at once and after 7 bytes
// (a torn file). It fails the test when no point matched.
func Run(t *testing.T, fresh func(t *testing.T) Case, prefixes ...string) {
	t.Helper()
	n := 0
	for _, p := range crashpoint.Points {
		if p.Kind != crashpoint.FileOp && p.Kind != crashpoint.Write || !hasPrefix(p.Name, prefixes) {
			continue
		}
		specs := []string{p.Name + "=ENOSPC", p.Name + "=EIO"}
		if p.Kind == crashpoint.Write {
			specs = append(specs, p.Name+"=ENOSPC@7")
		}
		for _, spec := range specs {
			n++
			t.Run(spec, func(t *testing.T) { one(t, fresh(t), p.Name, spec) })
		}
	}
	if n == 0 {
		t.Fatalf("no fault points start with %q", prefixes)
	}
}

// Only runs the faults of the listed points (for a package whose
// points others share, or a path that reaches only some).
func Only(names ...string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = n + "\x00" // hasPrefix: the whole name
	}
	return out
}

func hasPrefix(name string, prefixes []string) bool {
	for _, p := range prefixes {
		if whole, ok := strings.CutSuffix(p, "\x00"); ok {
			if name == whole {
				return true
			}
		} else if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func one(t *testing.T, c Case, point, spec string) {
	t.Helper()
	h, err := crashpoint.Parse("", "", "", spec)
	if err != nil {
		t.Fatal(err)
	}
	before := Tree(t, c.Dir)
	err = c.Try(h)
	var f *crashpoint.Fault
	if !errors.As(err, &f) || f.Point != point {
		t.Fatalf("with the fault: error %v, want the fault injected at %s", err, point)
	}
	if !errors.Is(err, syscall.ENOSPC) && !errors.Is(err, syscall.EIO) {
		t.Errorf("error %v is neither ENOSPC nor EIO", err)
	}
	if d := Diff(before, Tree(t, c.Dir)); d != "" {
		t.Errorf("the fault at %s changed the files:\n%s", point, d)
	}
	if err := c.Try(nil); err != nil {
		t.Errorf("without the fault: %v", err)
	}
}

// Tree maps each file under dir (relative path) to its bytes, each
// directory to "dir", each other entry to its mode.
func Tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		switch {
		case d.IsDir():
			m[rel] = "dir"
		case d.Type().IsRegular():
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			m[rel] = string(b)
		default:
			m[rel] = d.Type().String()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Diff describes how two Trees differ; "" when they are the same.
func Diff(a, b map[string]string) string {
	var out []string
	for k, v := range a {
		if w, ok := b[k]; !ok {
			out = append(out, "gone: "+k)
		} else if v != w {
			out = append(out, "changed: "+k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, "new: "+k)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}
