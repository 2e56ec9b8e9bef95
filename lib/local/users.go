package local

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"omail/lib/aliases"
	"omail/lib/cdbfile"
)

// User is the account a local part resolved to.
type User struct {
	Name   string // account name: $USER, and mailspool/NAME for the default mbox
	UID    int
	GID    int
	Groups []int  // supplementary groups (from the group database; may be nil)
	Home   string // "" for a user with no usable home: mail goes to mailspool/NAME
	Dash   string // "-" or "": between ".omail" and the extension in file names
	Ext    string // the address extension selecting .omail-EXT ("" for none)
	Spool  bool   // known only because mailspool/NAME exists (an OCMP kiosk user)
}

// AssignFile and AssignCDB are the users/assign map, relative to
// OMAIL_HOME. The cdb, when present, is used instead of the text file.
const (
	AssignFile = "users/assign"
	AssignCDB  = "users/assign.cdb"
)

// lookupUser is the default LookupUser: the users/assign map, then the
// password database, then mailspool/NAME. It returns nil, nil for a
// local part that is nobody.
func (d *Deliverer) lookupUser(local string) (*User, error) {
	if u, err := d.lookupAssign(local); u != nil || err != nil {
		return u, err
	}
	if u, err := lookupPasswd(local); u != nil || err != nil {
		return u, err
	}
	return d.lookupSpool(local)
}

// lookupAssign reads qmail's users/assign format:
//
//	=local:user:uid:gid:home:dash:ext:    the local part exactly
//	+prefix:user:uid:gid:home:dash:pre:   any local part starting with
//	                                      prefix; ext is pre + the rest
//	.                                     end of the file
//
// The exact form wins over wildcards, and the longest prefix among
// wildcards. In users/assign.cdb the keys are "=local" and "+prefix" and
// the values the rest of the line ("user:uid:gid:home:dash:ext:").
func (d *Deliverer) lookupAssign(local string) (*User, error) {
	get, closeFn, err := d.openAssign()
	if err != nil || get == nil {
		return nil, err
	}
	defer closeFn()
	if v, ok, err := get("=" + local); err != nil || ok {
		if err != nil {
			return nil, err
		}
		return parseAssign(v, "")
	}
	for i := len(local); i >= 0; i-- {
		v, ok, err := get("+" + local[:i])
		if err != nil {
			return nil, err
		}
		if ok {
			return parseAssign(v, local[i:])
		}
	}
	return nil, nil
}

// openAssign returns a lookup function over the cdb or the text file, or
// nil when neither exists.
func (d *Deliverer) openAssign() (get func(string) (string, bool, error), closeFn func(), err error) {
	db, err := cdbfile.Open(filepath.Join(d.Home, AssignCDB))
	if err == nil {
		return func(k string) (string, bool, error) {
			v, err := db.Get([]byte(k))
			return string(v), v != nil, err
		}, func() { db.Close() }, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("%s: %w", AssignCDB, err)
	}
	f, err := os.Open(filepath.Join(d.Home, AssignFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	m := map[string]string{}
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 4096), 1<<20)
	for s.Scan() {
		l := strings.TrimRight(s.Text(), "\r")
		if l == "." {
			break
		}
		if l == "" || (l[0] != '=' && l[0] != '+') {
			continue
		}
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			return nil, nil, fmt.Errorf("%s: line without ':': %q", AssignFile, l)
		}
		k = aliases.Fold(k)
		if _, dup := m[k]; !dup {
			m[k] = v
		}
	}
	if err := s.Err(); err != nil {
		return nil, nil, err
	}
	return func(k string) (string, bool, error) {
		v, ok := m[k]
		return v, ok, nil
	}, func() {}, nil
}

// parseAssign parses "user:uid:gid:home:dash:ext:"; rest is what a
// wildcard left of the local part, appended to ext.
func parseAssign(v, rest string) (*User, error) {
	f := strings.Split(v, ":")
	if len(f) < 6 {
		return nil, fmt.Errorf("%s: short entry %q", AssignFile, v)
	}
	uid, err1 := strconv.Atoi(f[1])
	gid, err2 := strconv.Atoi(f[2])
	if err1 != nil || err2 != nil || uid < 0 || gid < 0 || f[0] == "" || !filepath.IsAbs(f[3]) {
		return nil, fmt.Errorf("%s: bad entry %q", AssignFile, v)
	}
	u := &User{Name: f[0], UID: uid, GID: gid, Home: f[3], Dash: f[4], Ext: f[5] + rest}
	if pu, err := user.Lookup(u.Name); err == nil {
		u.Groups = groups(pu)
	}
	return u, nil
}

// lookupPasswd finds local in the password database, or else, as
// qmail-getpw does, the part before one of its '-', trying them from the
// right (the rest is the extension): "john-doe-list" is the account
// john-doe with extension "list" when there is one, else john with
// "doe-list". An account whose home is missing or not owned by it
// (system accounts) gets its mail in the spool, never from .omail files
// someone else controls.
func lookupPasswd(local string) (*User, error) {
	name, ext := local, ""
	for {
		pu, err := lookupAccount(name)
		if err == nil {
			return passwdUser(pu, ext)
		}
		var unk user.UnknownUserError
		if !errors.As(err, &unk) {
			return nil, err
		}
		i := strings.LastIndexByte(name, '-')
		if i <= 0 {
			return nil, nil
		}
		name, ext = local[:i], local[i+1:]
	}
}

// lookupAccount is user.Lookup; tests replace it.
var lookupAccount = user.Lookup

// passwdUser is the User of account pu with extension ext.
func passwdUser(pu *user.User, ext string) (*User, error) {
	uid, err1 := strconv.Atoi(pu.Uid)
	gid, err2 := strconv.Atoi(pu.Gid)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("user %s: uid %q gid %q", pu.Username, pu.Uid, pu.Gid)
	}
	u := &User{Name: pu.Username, UID: uid, GID: gid, Home: pu.HomeDir, Dash: "-", Ext: ext, Groups: groups(pu)}
	var st syscall.Stat_t
	if pu.HomeDir == "" || syscall.Stat(pu.HomeDir, &st) != nil || int(st.Uid) != uid || st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		u.Home = ""
	}
	return u, nil
}

func groups(pu *user.User) []int {
	ids, err := pu.GroupIds()
	if err != nil {
		return nil
	}
	var out []int
	for _, s := range ids {
		if n, err := strconv.Atoi(s); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// lookupSpool makes a user of a name with no account whose mbox exists
// in the spool (omail-unpack client creates it): deliveries run as the
// owner of that file, which must have no other name (a hard link).
func (d *Deliverer) lookupSpool(local string) (*User, error) {
	if strings.HasSuffix(local, ".lock") {
		// Not a mailbox: a mailbox's dotlock, whose record mail
		// appended to it would spoil (and whose age it would renew).
		return nil, nil
	}
	spool, err := d.Ctl.Line("mailspool")
	if err != nil {
		return nil, err
	}
	var st syscall.Stat_t
	err = syscall.Lstat(filepath.Join(spool, local), &st)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return nil, nil
	}
	if st.Nlink != 1 {
		// A mailbox has one name. Another may be a hard link someone
		// made in a spool open to all (1777, without the kernel's
		// protected_hardlinks) to a file of root's or another user's,
		// which the delivery would then append to as its owner.
		return nil, fmt.Errorf("%s has %d links, not one: not taken for a mailbox", filepath.Join(spool, local), st.Nlink)
	}
	return &User{Name: local, UID: int(st.Uid), GID: int(st.Gid), Spool: true}, nil
}
