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
	// Done, for RunResume, checks the end state after the retry: the
	// work done, once.
	Done func(t *testing.T)
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

// RunResume iterates over the crashpoint.Resume points whose name
// starts with one of prefixes: with the fault, Try must fail; without,
// the retry must succeed and Done find the work done once.
func RunResume(t *testing.T, fresh func(t *testing.T) Case, prefixes ...string) {
	t.Helper()
	n := 0
	for _, p := range crashpoint.Points {
		if p.Kind != crashpoint.Resume || !hasPrefix(p.Name, prefixes) {
			continue
		}
		n++
		t.Run(p.Name, func(t *testing.T) {
			c := fresh(t)
			h, fired := faulty(t, p.Name+"=EIO")
			if err := c.Try(h); err == nil || !*fired {
				t.Fatalf("the fault at %s: reached %v, error %v", p.Name, *fired, err)
			}
			if err := c.Try(nil); err != nil {
				t.Fatalf("the retry: %v", err)
			}
			c.Done(t)
		})
	}
	if n == 0 {
		t.Fatalf("no resume points start with %q", prefixes)
	}
}

// faulty returns hooks injecting spec, and whether the fault fired.
func faulty(t *testing.T, spec string) (crashpoint.Hook, *bool) {
	h, err := crashpoint.Parse("", "", "", spec)
	if err != nil {
		t.Fatal(err)
	}
	fired := false
	return func(p string) {
		defer func() {
			if r := recover(); r != nil {
				fired = true
				panic(r) // on to Op or Writer, which return it
			}
		}()
		h(p)
	}, &fired
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
	hook, fired := faulty(t, spec)
	before := Tree(t, c.Dir)
	err := c.Try(hook)
	if !*fired {
		t.Fatalf("the fault at %s was not reached", point)
	}
	if err == nil {
		t.Fatalf("the fault at %s was not reported", point)
	}
	// Where the error itself comes back (rather than a summary, the
	// cause logged), it is the disk's.
	var f *crashpoint.Fault
	if errors.As(err, &f) && (f.Point != point || !errors.Is(err, syscall.ENOSPC) && !errors.Is(err, syscall.EIO)) {
		t.Errorf("error %v, want the fault injected at %s", err, point)
	}
	if d := Diff(before, Tree(t, c.Dir)); d != "" {
		t.Errorf("the fault at %s changed the files:\n%s", point, d)
	}
	if err := c.Try(nil); err != nil {
		t.Errorf("without the fault: %v", err)
	}
	if c.Done != nil {
		c.Done(t)
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
