package unpacker

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// ownMailbox, run as root before the mailbox is opened, makes USER's
// mailbox one USER can read: created for USER with mode 600 when it is
// missing, given back to USER when root owns it (a mailbox an earlier
// root run or an admin made). A mailbox someone else owns is left
// alone: it is theirs to fix, and omail never guesses. USER without an
// account on this machine (an OCMP user whose mail a POP/IMAP server
// reads as one uid) keeps what mbox.Open makes, mode 600, and the log
// says so once per bundle. Links are never followed.
func (u *Unpacker) ownMailbox(path, name string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	acct, err := user.Lookup(name)
	if err != nil {
		var unknown user.UnknownUserError
		if errors.As(err, &unknown) {
			u.Log.Printf("no account for %s on this machine: %s stays root's, mode 600", name, path)
			return nil
		}
		return err
	}
	uid, err1 := strconv.Atoi(acct.Uid)
	gid, err2 := strconv.Atoi(acct.Gid)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("user %s has ids %s:%s", name, acct.Uid, acct.Gid)
	}
	if uid == 0 {
		return nil // root's mailbox is root's
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if errors.Is(err, fs.ErrExist) {
		f, err = os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok || !fi.Mode().IsRegular() || st.Uid != 0 {
			return nil
		}
		u.Log.Printf("%s was root's: given to %s", path, name)
		return f.Chown(uid, gid)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Chown(uid, gid)
}
