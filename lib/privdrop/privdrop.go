// Package privdrop makes a process that started as root into an
// ordinary user for good: supplementary groups, gid, uid, in that order
// (after setuid nothing else may be changed). On Linux, Go applies each
// of these calls to every thread of the process.
package privdrop

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// IDs are the identity to take.
type IDs struct {
	User   string
	UID    int
	GID    int
	Groups []int
}

// Lookup finds a user's uid, primary gid and supplementary groups in
// the system's databases. Root is refused: dropping to root is not
// dropping anything.
func Lookup(name string) (IDs, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return IDs{}, err
	}
	ids := IDs{User: u.Username}
	if ids.UID, err = strconv.Atoi(u.Uid); err != nil {
		return IDs{}, fmt.Errorf("user %s: uid %q", name, u.Uid)
	}
	if ids.GID, err = strconv.Atoi(u.Gid); err != nil {
		return IDs{}, fmt.Errorf("user %s: gid %q", name, u.Gid)
	}
	gs, err := u.GroupIds()
	if err != nil {
		return IDs{}, fmt.Errorf("user %s: groups: %v", name, err)
	}
	for _, g := range gs {
		n, err := strconv.Atoi(g)
		if err != nil {
			return IDs{}, fmt.Errorf("user %s: group id %q", name, g)
		}
		ids.Groups = append(ids.Groups, n)
	}
	return ids, ids.Check()
}

// ErrRoot is the answer for a drop to uid or gid 0.
var ErrRoot = errors.New("refusing to run as root (uid or gid 0)")

// Check refuses an identity that is root's.
func (ids IDs) Check() error {
	if ids.UID == 0 || ids.GID == 0 {
		return fmt.Errorf("user %s: %w", ids.User, ErrRoot)
	}
	return nil
}

// Drop takes the identity: setgroups, setgid, setuid. A process that is
// already exactly that user (no root to give up) is left alone. After
// the drop it checks that root cannot be regained.
func Drop(ids IDs) error {
	if err := ids.Check(); err != nil {
		return err
	}
	if os.Geteuid() == ids.UID && os.Getuid() == ids.UID && os.Getgid() == ids.GID && os.Getegid() == ids.GID {
		return nil
	}
	groups := ids.Groups
	if len(groups) == 0 {
		groups = []int{ids.GID}
	}
	if err := syscall.Setgroups(groups); err != nil {
		return fmt.Errorf("setgroups for %s: %v", ids.User, err)
	}
	if err := syscall.Setgid(ids.GID); err != nil {
		return fmt.Errorf("setgid %d: %v", ids.GID, err)
	}
	if err := syscall.Setuid(ids.UID); err != nil {
		return fmt.Errorf("setuid %d: %v", ids.UID, err)
	}
	if os.Getuid() != ids.UID || os.Geteuid() != ids.UID || os.Getgid() != ids.GID || os.Getegid() != ids.GID {
		return fmt.Errorf("still uid %d/%d gid %d/%d after dropping to %s", os.Getuid(), os.Geteuid(), os.Getgid(), os.Getegid(), ids.User)
	}
	if syscall.Setuid(0) == nil {
		return fmt.Errorf("could become root again after dropping to %s", ids.User)
	}
	return nil
}
