package crashpoint

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// pointCall finds the points the code calls: a string literal as the
// (first, or second after one identifier) argument of the calls that
// take a point's name: Hook.At, Hook.Op, Hook.Writer, and the packages'
// helpers around them (crash, at, seal, forget, Hook).
var pointCall = regexp.MustCompile(`(?:\.At|\.Op|\.Writer|\bcrash|\bat|\.seal|\.forget|\.Hook)\(\s*(?:\w+,\s*)?"([a-z0-9-]+)"`)

// TestPointsListed greps lib/ for the points the programs call and
// compares them with Points, both ways: a new point must be listed (so
// that test/crash-every-point reaches it), and a listed one must exist.
func TestPointsListed(t *testing.T) {
	called := map[string][]string{}
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		if strings.HasPrefix(path, filepath.Join("..", "crashpoint")) {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "//") {
				continue
			}
			for _, m := range pointCall.FindAllStringSubmatch(line, -1) {
				called[m[1]] = append(called[m[1]], path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(called) < 20 {
		t.Fatalf("found only %d points in lib/: is the pattern still right?", len(called))
	}
	listed := map[string]bool{}
	for _, p := range Points {
		if listed[p.Name] {
			t.Errorf("%s listed twice", p.Name)
		}
		listed[p.Name] = true
		if _, ok := called[p.Name]; !ok {
			t.Errorf("%s is listed in points.go but called nowhere", p.Name)
		}
	}
	var missing []string
	for name, where := range called {
		if !listed[name] {
			missing = append(missing, name+" ("+strings.Join(where, ", ")+")")
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("point %s is called but not listed in points.go", m)
	}
}

// TestPointCallPattern: the pattern finds each way the code names a
// point, and not other string arguments.
func TestPointCallPattern(t *testing.T) {
	for line, want := range map[string]string{
		`q.Crash.At("queue-trim")`:                        "queue-trim",
		`err := q.Crash.Op("queue-commit-link", func() {`: "queue-commit-link",
		`w := hook.Writer("maildir-write", f)`:            "maildir-write",
		`u.crash("unpack-queued")`:                        "unpack-queued",
		`m.forget(forwards, "forward-recorded")`:          "forward-recorded",
		`a.Hook("mbox-torn")`:                             "mbox-torn",
		`p.seal("queue-commit-fsync", env)`:               "queue-commit-fsync",
		`log.Printf("not-a-point")`:                       "",
	} {
		m := pointCall.FindStringSubmatch(line)
		got := ""
		if m != nil {
			got = m[1]
		}
		if got != want {
			t.Errorf("%s: found %q, want %q", line, got, want)
		}
	}
}
