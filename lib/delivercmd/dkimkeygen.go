package delivercmd

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"omail/lib/control"
	"omail/lib/dkim"
	"omail/lib/home"
	"omail/lib/qexit"
	"omail/lib/safefile"
)

// runDKIMKeygen is `omail-deliver -dkimkeygen [-ed25519 | -rsa] DOMAIN
// SELECTOR`: it writes a new DKIM private key to
// control/dkim/SELECTOR._domainkey.DOMAIN.pem (mode 600, never over an
// existing file) and prints the DNS TXT record to publish and the
// dkimkeys line to add once the record resolves. The key is not added
// to dkimkeys here: mail signed before its key is published fails
// verification, which is worse than no signature.
//
// RSA 2048 is the default because every verifier checks it; Ed25519
// (-ed25519) is short and fast but some large providers still ignore
// it, so it is best used beside an RSA key (two dkimkeys lines).
//
// Remote delivery reads the key as the user it runs as: as root that
// is the -remote child's user (remoteIDs), so the key is given to it.
func runDKIMKeygen(args []string, env home.Env, stdout, stderr io.Writer) int {
	alg := dkim.RSA
	if len(args) > 0 {
		switch args[0] {
		case "-ed25519":
			alg, args = dkim.Ed25519, args[1:]
		case "-rsa":
			args = args[1:]
		}
	}
	if len(args) != 2 {
		fmt.Fprintln(stderr, "omail-deliver: usage: omail-deliver -dkimkeygen [-ed25519 | -rsa] DOMAIN SELECTOR")
		return qexit.Usage
	}
	domain, selector := control.NormalizeDomain(args[0]), args[1]
	for _, err := range []error{dkim.CheckName("domain", domain), dkim.CheckName("selector", selector)} {
		if err != nil {
			fmt.Fprintf(stderr, "omail-deliver: -dkimkeygen: %v\n", err)
			return qexit.Usage
		}
	}
	h := env.Dir()
	ctl := control.New(h)
	rel := filepath.Join("dkim", dkim.RecordName(domain, selector)+".pem")
	path := ctl.File(rel)
	uid, gid := -1, -1
	if os.Geteuid() == 0 {
		u, g, err := remoteIDs(h, ctl)
		if err != nil {
			fmt.Fprintf(stderr, "omail-deliver: -dkimkeygen: %v\n", err)
			return qexit.Temp
		}
		uid, gid = int(u), int(g)
	}
	if _, err := os.Lstat(path); err == nil {
		fmt.Fprintf(stderr, "omail-deliver: -dkimkeygen: %s exists; not overwritten (pick another selector)\n", path)
		return qexit.Perm
	}
	key, pem, err := dkim.GenerateKey(alg)
	if err != nil {
		fmt.Fprintf(stderr, "omail-deliver: -dkimkeygen: %v\n", err)
		return qexit.Temp
	}
	txt, err := dkim.TXTValue(key)
	if err != nil {
		fmt.Fprintf(stderr, "omail-deliver: -dkimkeygen: %v\n", err)
		return qexit.Temp
	}
	if err := os.Mkdir(filepath.Dir(path), 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		fmt.Fprintf(stderr, "omail-deliver: -dkimkeygen: %v\n", err)
		return qexit.Temp
	}
	if err := writeNewKey(path, pem, uid, gid); err != nil {
		fmt.Fprintf(stderr, "omail-deliver: -dkimkeygen: %v\n", err)
		if errors.Is(err, fs.ErrExist) {
			return qexit.Perm
		}
		return qexit.Temp
	}
	owner := "you"
	if uid >= 0 {
		owner = fmt.Sprintf("uid %d, who runs remote delivery", uid)
	}
	fmt.Fprintf(stdout, "# a new %s key for %s, selector %s: %s (mode 600, owned by %s)\n", alg, domain, selector, path, owner)
	fmt.Fprintf(stdout, "# 1. publish this TXT record in the DNS of %s:\n", domain)
	fmt.Fprintln(stdout, dkim.ZoneLine(domain, selector, txt))
	fmt.Fprintf(stdout, "# 2. once it resolves, add this line to %s:\n", ctl.File(dkim.File))
	fmt.Fprintf(stdout, "%s:%s:%s\n", domain, selector, rel)
	return qexit.OK
}

// writeNewKey writes a private key durably at path, which must not
// exist: the key is written to a temporary file (mode 600, given to
// uid/gid when they are not -1) and fsynced, then linked into place,
// which fails rather than replace a key some published record may
// still name, and the directory is fsynced.
func writeNewKey(path string, data []byte, uid, gid int) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".keygen*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	err = f.Chmod(0o600)
	if err == nil && uid >= 0 {
		err = f.Chown(uid, gid)
	}
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s exists; not overwritten (pick another selector): %w", path, fs.ErrExist)
		}
		return err
	}
	return safefile.SyncDir(filepath.Dir(path))
}
