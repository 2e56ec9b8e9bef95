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
	"slices"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
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
	return fromAccount(u, name)
}

// LookupID is Lookup for the account of a uid (the owner of a file).
// A uid that no account has is refused, as is root's account or one
// whose primary group is root's.
func LookupID(uid int) (IDs, error) {
	u, err := user.LookupId(strconv.Itoa(uid))
	if err != nil {
		return IDs{}, err
	}
	return fromAccount(u, "uid "+strconv.Itoa(uid))
}

// fromAccount takes the ids of an account, named by who in errors.
func fromAccount(u *user.User, who string) (IDs, error) {
	var err error
	ids := IDs{User: u.Username}
	if ids.UID, err = strconv.Atoi(u.Uid); err != nil {
		return IDs{}, fmt.Errorf("user %s: uid %q", who, u.Uid)
	}
	if ids.GID, err = strconv.Atoi(u.Gid); err != nil {
		return IDs{}, fmt.Errorf("user %s: gid %q", who, u.Gid)
	}
	gs, err := u.GroupIds()
	if err != nil {
		return IDs{}, fmt.Errorf("user %s: groups: %v", who, err)
	}
	for _, g := range gs {
		n, err := strconv.Atoi(g)
		if err != nil {
			return IDs{}, fmt.Errorf("user %s: group id %q", who, g)
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

// Drop takes the identity: setgroups (the primary group alone when
// Groups is empty), setresgid, setresuid. A process that is already
// exactly that user (no root to give up) is left alone. After the drop
// it checks the ids and that root cannot be regained.
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
	return drop(ids.User, ids.UID, ids.GID, groups)
}

// DropIDs takes ids given by number, for a process its parent started
// as root so that it becomes the user itself, after making itself not
// dumpable (a local delivery child): exactly the supplementary groups
// given (none when empty), then real, effective and saved gid, then
// uid. A uid of 0 is refused; a gid of 0 is not (an account's primary
// group may be root's). It always drops: run as anyone but root, it
// fails.
func DropIDs(uid, gid int, groups []int) error {
	if uid == 0 {
		return fmt.Errorf("uid 0: %w", ErrRoot)
	}
	if uid < 0 || gid < 0 {
		return fmt.Errorf("bad ids %d:%d", uid, gid)
	}
	for _, g := range groups {
		if g < 0 {
			return fmt.Errorf("bad group %d", g)
		}
	}
	return drop("uid "+strconv.Itoa(uid), uid, gid, groups)
}

// drop sets the groups, gid and uid (real, effective and saved), and
// checks them afterwards.
func drop(who string, uid, gid int, groups []int) error {
	if err := syscall.Setgroups(groups); err != nil {
		return fmt.Errorf("setgroups for %s: %v", who, err)
	}
	if err := syscall.Setresgid(gid, gid, gid); err != nil {
		return fmt.Errorf("setresgid %d: %v", gid, err)
	}
	if err := syscall.Setresuid(uid, uid, uid); err != nil {
		return fmt.Errorf("setresuid %d: %v", uid, err)
	}
	ru, eu, su := unix.Getresuid()
	rg, eg, sg := unix.Getresgid()
	if ru != uid || eu != uid || su != uid || rg != gid || eg != gid || sg != gid {
		return fmt.Errorf("still uids %d/%d/%d gids %d/%d/%d after dropping to %s", ru, eu, su, rg, eg, sg, who)
	}
	got, err := syscall.Getgroups()
	if err != nil {
		return fmt.Errorf("getgroups after dropping to %s: %v", who, err)
	}
	if !sameSet(got, groups) {
		return fmt.Errorf("groups %v after dropping to %s, not %v", got, who, groups)
	}
	if syscall.Setuid(0) == nil {
		return fmt.Errorf("could become root again after dropping to %s", who)
	}
	return nil
}

// sameSet says whether a and b hold the same numbers.
func sameSet(a, b []int) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}
