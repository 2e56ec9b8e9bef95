package maildir

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

func mkmaildir(t testing.TB) string {
	dir := filepath.Join(t.TempDir(), "Maildir")
	for _, d := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestDeliver(t *testing.T) {
	dir := mkmaildir(t)
	name, err := Deliver(dir, []string{"Return-Path: <a@b>", "Delivered-To: c@d\n"}, strings.NewReader("Subject: x\n\nFrom body\n"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "new", name))
	if err != nil {
		t.Fatal(err)
	}
	if want := "Return-Path: <a@b>\nDelivered-To: c@d\nSubject: x\n\nFrom body\n"; string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(ents) != 0 {
		t.Errorf("tmp/ not empty: %v", ents)
	}
	st, _ := os.Stat(filepath.Join(dir, "new", name))
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode())
	}
	if strings.ContainsAny(name, "/:") {
		t.Errorf("name %q holds / or :", name)
	}
}

func TestMissingMaildir(t *testing.T) {
	if _, err := Deliver(filepath.Join(t.TempDir(), "nope"), nil, strings.NewReader("x")); err == nil {
		t.Fatal("delivery into a missing Maildir succeeded")
	}
}

func TestPrefixWithLineBreakRefused(t *testing.T) {
	dir := mkmaildir(t)
	if _, err := Deliver(dir, []string{"A: b\nC: d"}, strings.NewReader("x")); err == nil {
		t.Fatal("accepted")
	}
}

type badReader struct{}

func (badReader) Read([]byte) (int, error) { return 0, errors.New("boom") }

func TestReadErrorLeavesNothing(t *testing.T) {
	dir := mkmaildir(t)
	if _, err := Deliver(dir, nil, io.MultiReader(strings.NewReader("part"), badReader{})); err == nil {
		t.Fatal("no error")
	}
	for _, d := range []string{"tmp", "new"} {
		if ents, _ := os.ReadDir(filepath.Join(dir, d)); len(ents) != 0 {
			t.Errorf("%s/ not empty: %v", d, ents)
		}
	}
}

// Many deliveries at once from goroutines and processes: every message
// arrives, whole, under its own name.
func TestManyParallelDeliveriesUnique(t *testing.T) {
	dir := mkmaildir(t)
	const workers, each, procs = 16, 50, 4
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if _, err := Deliver(dir, nil, strings.NewReader(fmt.Sprintf("g %d %d\n", w, i))); err != nil {
					t.Error(err)
				}
			}
		}(w)
	}
	var cmds []*exec.Cmd
	for p := 0; p < procs; p++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperDeliver$")
		cmd.Env = append(os.Environ(), "MAILDIR_HELPER="+dir, "MAILDIR_HELPER_ID="+strconv.Itoa(p))
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	wg.Wait()
	for _, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	ents, err := os.ReadDir(filepath.Join(dir, "new"))
	if err != nil {
		t.Fatal(err)
	}
	bodies := map[string]bool{}
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(dir, "new", e.Name()))
		bodies[string(b)] = true
	}
	if want := workers*each + procs*each; len(ents) != want || len(bodies) != want {
		t.Fatalf("%d files, %d distinct bodies, want %d", len(ents), len(bodies), want)
	}
}

// TestHelperDeliver is not a test: the parallel test runs it in other
// processes.
func TestHelperDeliver(t *testing.T) {
	dir := os.Getenv("MAILDIR_HELPER")
	if dir == "" {
		return
	}
	for i := 0; i < 50; i++ {
		if _, err := Deliver(dir, nil, strings.NewReader(fmt.Sprintf("p %s %d\n", os.Getenv("MAILDIR_HELPER_ID"), i))); err != nil {
			t.Fatal(err)
		}
	}
}

// Python's mailbox module reads the Maildir back with the exact bytes.
func TestPythonReadsMaildir(t *testing.T) {
	dir := mkmaildir(t)
	msg := "Subject: hi\n\nFrom here\nbye\n"
	if _, err := Deliver(dir, []string{"Delivered-To: u@x"}, strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("python3", "-c", `
import mailbox, sys
box = mailbox.Maildir(sys.argv[1], factory=None, create=False)
sys.stdout.buffer.write(b"".join(box.get_bytes(k) for k in box.keys()))
`, dir).Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := "Delivered-To: u@x\n" + msg; string(out) != want {
		t.Errorf("python read %q, want %q", out, want)
	}
}
