package mbox

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A disk that fills up in the middle of a delivery leaves the mailbox
// byte for byte as it was. The test mounts a small tmpfs in a private
// mount namespace (unshare -m as root, unshare -Urm otherwise) and runs
// TestHelperFullDisk inside it.
func TestFullDiskLeavesMailboxUnchanged(t *testing.T) {
	dir := t.TempDir()
	args := []string{"-m"}
	if os.Getuid() != 0 {
		args = []string{"-Urm"}
	}
	args = append(args, "sh", "-c", `mount -t tmpfs -o size=256k omail-test "$1" && exec "$2" -test.run='^TestHelperFullDisk$' -test.v`, "sh", dir, os.Args[0])
	cmd := exec.Command("unshare", args...)
	cmd.Env = append(os.Environ(), "MBOX_FULLDISK="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "full disk: mailbox unchanged") {
		t.Fatalf("full disk helper: %v\n%s", err, out)
	}
}

// TestHelperFullDisk is not a test on its own: see above.
func TestHelperFullDisk(t *testing.T) {
	dir := os.Getenv("MBOX_FULLDISK")
	if dir == "" {
		return
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil || st.Type != 0x01021994 { // TMPFS_MAGIC
		t.Fatalf("%s is not the test's tmpfs (%v)", dir, err)
	}
	path := filepath.Join(dir, "box")
	add(t, path, "a@b", []string{"Delivered-To: x@y"}, "Subject: old\n\n"+strings.Repeat("old mail\n", 2000))
	before, _ := os.ReadFile(path)

	// Fill the file system, then free a little, so that the delivery
	// starts well and runs out of space part way.
	filler, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte("x"), 4096)
	var n int64
	for {
		w, err := filler.Write(chunk)
		n += int64(w)
		if errors.Is(err, syscall.ENOSPC) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := filler.Truncate(n - 32<<10); err != nil {
		t.Fatal(err)
	}
	filler.Close()

	for _, size := range []int{100 << 10, 400 << 10} {
		a, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		err = a.Add("a@b", []string{"Delivered-To: x@y"}, strings.NewReader("Subject: new\n\n"+strings.Repeat("From new mail\n", size/14)), when)
		if err == nil {
			err = a.Commit()
			if err == nil {
				t.Fatalf("a %d byte delivery fitted into a full disk", size)
			}
		} else if aerr := a.Abort(); aerr != nil {
			t.Fatal(aerr)
		}
		if !errors.Is(err, syscall.ENOSPC) {
			t.Errorf("error %v, want ENOSPC", err)
		}
		after, _ := os.ReadFile(path)
		if !bytes.Equal(before, after) {
			t.Fatalf("mailbox changed: %d bytes, was %d", len(after), len(before))
		}
	}
	// With room again, delivery works.
	os.Remove(filepath.Join(dir, "filler"))
	add(t, path, "a@b", nil, "Subject: fits\n\nok\n")
	t.Log("full disk: mailbox unchanged")
}
