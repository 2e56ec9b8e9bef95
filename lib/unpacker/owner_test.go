package unpacker

import (
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// As root, omail-unpack client makes USER's mailbox USER's, mode 600,
// and gives back one root made; one a third user owns is left alone.
// (Only root can give files away: run as another user, the test checks
// that the mailbox is that user's own, as before.)
func TestClientMailboxOwner(t *testing.T) {
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	owner := func(p string) (int, os.FileMode) {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return int(fi.Sys().(*syscall.Stat_t).Uid), fi.Mode().Perm()
	}
	want := uid
	if os.Geteuid() != 0 {
		want = os.Geteuid()
	}

	u, h := setup(t)
	file := filepath.Join(h, "in")
	writeBundle(t, file, []msg{{"a@x", []string{"nobody@k"}, "Subject: one\n\nhi\n"}})
	if err := u.Unpack(file, "nobody"); outcome(err) != "done" {
		t.Fatalf("%v: %s", err, logText(u))
	}
	mb := filepath.Join(h, "mail", "nobody")
	if o, m := owner(mb); o != want || m != 0o600 {
		t.Errorf("new mailbox owned by %d mode %o, want %d 600", o, m, want)
	}
	if os.Geteuid() != 0 {
		return
	}
	// A mailbox root made is given to its user.
	os.Chown(mb, 0, 0)
	writeBundle(t, file, []msg{{"a@x", []string{"nobody@k"}, "Subject: two\n\nhi\n"}})
	if err := u.Unpack(file, "nobody"); outcome(err) != "done" {
		t.Fatalf("%v: %s", err, logText(u))
	}
	if o, _ := owner(mb); o != uid {
		t.Errorf("root's mailbox not given to nobody: owner %d", o)
	}
	// One a third user owns stays theirs.
	os.Chown(mb, 12345, 12345)
	writeBundle(t, file, []msg{{"a@x", []string{"nobody@k"}, "Subject: three\n\nhi\n"}})
	if err := u.Unpack(file, "nobody"); outcome(err) != "done" {
		t.Fatalf("%v: %s", err, logText(u))
	}
	if o, _ := owner(mb); o != 12345 {
		t.Errorf("a third user's mailbox changed owner: %d", o)
	}
}
