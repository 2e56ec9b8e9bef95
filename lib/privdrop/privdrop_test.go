package privdrop

import (
	"errors"
	"os"
	"testing"
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
