package unpacker

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"

	"omail/lib/mbox"
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
	did, err := mbox.MakeOwned(path, uid, gid)
	if did == mbox.GivenToUser {
		u.Log.Printf("%s was root's: given to %s", path, name)
	}
	return err
}
