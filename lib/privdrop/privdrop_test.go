package privdrop

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestLookupRefusesRoot(t *testing.T) {
	if _, err := Lookup("root"); !errors.Is(err, ErrRoot) {
		t.Errorf("Lookup(root): %v, want ErrRoot", err)
	}
}

func TestLookupUnknown(t *testing.T) {
	if _, err := Lookup("no-such-user-omail-test"); err == nil {
		t.Error("an unknown user was found")
	}
}

func TestLookupNobody(t *testing.T) {
	ids, err := Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	if ids.UID == 0 || ids.GID == 0 || ids.User != "nobody" {
		t.Errorf("nobody: %+v", ids)
	}
}

func TestCheck(t *testing.T) {
	for _, c := range []struct {
		ids IDs
		ok  bool
	}{
		{IDs{User: "a", UID: 1000, GID: 1000}, true},
		{IDs{User: "a", UID: 0, GID: 1000}, false},
		{IDs{User: "a", UID: 1000, GID: 0}, false},
	} {
		if err := c.ids.Check(); (err == nil) != c.ok {
			t.Errorf("%+v: %v", c.ids, err)
		}
	}
}

func TestDropRefusesRoot(t *testing.T) {
	if err := Drop(IDs{User: "root"}); !errors.Is(err, ErrRoot) {
		t.Errorf("Drop(root): %v", err)
	}
}

// Dropping to ourselves changes nothing and succeeds, root or not; the
// real drop (as root, to nobody) is test/smtpd-resident-user's, in a
// process of its own: here it would make the test binary nobody.
func TestDropToSelf(t *testing.T) {
	if os.Getuid() == 0 || os.Getgid() == 0 {
		ids := IDs{User: "self", UID: os.Getuid(), GID: os.Getgid()}
		if err := Drop(ids); !errors.Is(err, ErrRoot) {
			t.Errorf("Drop to root self: %v", err)
		}
		return
	}
	if err := Drop(IDs{User: "self", UID: os.Getuid(), GID: os.Getgid()}); err != nil {
		t.Errorf("Drop to self: %v", err)
	}
}

func TestMain(m *testing.M) {
	// TestDropIDs runs this binary to drop.
	if len(os.Args) > 1 && os.Args[1] == "-drop-ids" {
		os.Exit(showDropIDs())
	}
	os.Exit(m.Run())
}

// DropIDs, as root, in a process of its own: real, effective and saved
// ids all the user's, exactly the groups given (none when none is), a
// gid of 0 taken, uid 0 refused.
func TestDropIDs(t *testing.T) {
	if err := DropIDs(0, 4321, nil); !errors.Is(err, ErrRoot) {
		t.Errorf("DropIDs to uid 0: %v", err)
	}
	if os.Geteuid() != 0 {
		if err := exec.Command(os.Args[0], "-drop-ids", "4321", "4321").Run(); err == nil {
			t.Error("DropIDs succeeded without root")
		}
		return
	}
	for args, want := range map[string]string{
		"4321 4322 4242 4343": "4321 4321 4321 4322 4322 4322 [4242 4343]\n",
		"4321 0":              "4321 4321 4321 0 0 0 []\n",
	} {
		got, err := exec.Command(os.Args[0], append([]string{"-drop-ids"}, strings.Fields(args)...)...).CombinedOutput()
		if string(got) != want || err != nil {
			t.Errorf("%s: %q (%v), want %q", args, got, err, want)
		}
	}
}

// showDropIDs drops to the ids of its arguments (uid gid groups...) and
// prints what it is then.
func showDropIDs() int {
	var n []int
	for _, a := range os.Args[2:] {
		i, err := strconv.Atoi(a)
		if err != nil {
			return 2
		}
		n = append(n, i)
	}
	if err := DropIDs(n[0], n[1], n[2:]); err != nil {
		fmt.Println(err)
		return 1
	}
	ru, eu, su := unix.Getresuid()
	rg, eg, sg := unix.Getresgid()
	groups, err := syscall.Getgroups()
	if err != nil {
		fmt.Println(err)
		return 1
	}
	fmt.Println(ru, eu, su, rg, eg, sg, groups)
	return 0
}
