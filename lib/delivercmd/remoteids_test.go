package delivercmd

import (
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"omail/lib/control"
)

func TestRemoteIDs(t *testing.T) {
	h := t.TempDir()
	os.MkdirAll(filepath.Join(h, "control"), 0o755)
	os.MkdirAll(filepath.Join(h, "queue"), 0o755)
	ctl := control.New(h)
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := strconv.ParseUint(nobody.Uid, 10, 32)

	os.WriteFile(filepath.Join(h, "control", "remoteuser"), []byte("nobody\n"), 0o644)
	if uid, _, err := remoteIDs(h, ctl); err != nil || uint64(uid) != want {
		t.Fatalf("remoteuser nobody: uid %d, %v", uid, err)
	}
	for _, bad := range []string{"root", "no-such-user-omail"} {
		os.WriteFile(filepath.Join(h, "control", "remoteuser"), []byte(bad+"\n"), 0o644)
		if uid, _, err := remoteIDs(h, ctl); err == nil {
			t.Errorf("remoteuser %s: uid %d, no error", bad, uid)
		}
	}
	// Without the file: the queue's owner, or nobody when that is root.
	os.Remove(filepath.Join(h, "control", "remoteuser"))
	fi, _ := os.Stat(filepath.Join(h, "queue"))
	uid, _, err := remoteIDs(h, ctl)
	if err != nil {
		t.Fatal(err)
	}
	if owner := fileUID(fi); owner != 0 && uid != owner || owner == 0 && uint64(uid) != want {
		t.Errorf("default: uid %d (queue owned by %d)", uid, owner)
	}
}

func fileUID(fi os.FileInfo) uint32 { return fi.Sys().(*syscall.Stat_t).Uid }
