package packer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"omail/lib/bundle"
	"omail/lib/outbox"
)

// An endpoint's directories are reached from ocmpdir one name at a time,
// with directory descriptors, and every step of a bundle's publication
// (creating it in .omail-tmp/, its chown, the rename into upload/, the
// fsyncs) works relative to the descriptors: omail-pack runs as root,
// and a user who owns part of the OCMP tree (a kiosk user's own
// endpoint directory) must not point root at another directory, by a
// link made before the pass or by a name swapped during it.
//
// A symbolic link met on the way (at <endpoint>, mail or upload, or in
// such a link's target) is followed only when root or we own it, as
// Postfix follows root's links: an admin may move an endpoint's mail/
// (or its directory) to another disk. Not upload/ alone: .omail-tmp/
// must be on the same one (sameMount). Each name of the link's target
// is looked at by the same rule.
// ocmpdir itself is opened by its path: root's control file names it.

// epDirs is an endpoint's upload/ and .omail-tmp/, open.
type epDirs struct {
	upload, tmp *os.File // tmp is nil when a journal's .omail-tmp/ is gone
	tmpID       dirID    // tmp's, for the journal
	uploadPath  string   // <base>/<ep>/mail/upload, for the journal and logs
	tmpPath     string   // <base>/<ep>/mail/.omail-tmp
}

func (d *epDirs) close() {
	if d == nil {
		return
	}
	d.upload.Close()
	if d.tmp != nil {
		d.tmp.Close()
	}
}

// errMissing is a directory on the way that is not there.
var errMissing = errors.New("no such directory")

// refusedLink is a symbolic link the rule does not follow.
type refusedLink struct {
	path string
	uid  uint32
}

func (e *refusedLink) Error() string {
	return fmt.Sprintf("%s is a symbolic link owned by uid %d: refused (only root's and our own are followed)", e.path, e.uid)
}

// linkTrusted says whether a symbolic link of this owner is followed;
// tests that do not run as root replace it.
var linkTrusted = func(st *unix.Stat_t) bool { return st.Uid == 0 || int(st.Uid) == euid() }

// euid is os.Geteuid; tests that do not run as root change it.
var euid = os.Geteuid

// maxLinks is how many symbolic links one resolution follows, as the
// kernel's limit.
const maxLinks = 40

// walker resolves names under a directory it has open.
type walker struct {
	links int
	// mkdir, if not nil, makes a missing directory name in dir (and
	// the walk goes on into it); nil: a missing one is errMissing.
	mkdir func(dir *os.File, name string) error
}

// The directories on the way are opened O_PATH: that needs search
// permission only, as a walk by path does (a non-root pass may meet a
// 711 directory, a home-like <endpoint>), and openat, mkdirat, fstat
// and readlinkat work on such a descriptor. Only upload/ and
// .omail-tmp/ are opened for reading (readFlags): they are fsynced,
// listed and fchmodded.
const (
	pathFlags = unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	readFlags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
)

// openat opens the directory name in dir, not following a link, O_PATH.
func openat(dir *os.File, name string) (*os.File, error) {
	return openFlags(dir, name, pathFlags)
}

// openRead opens the directory name in dir, not following a link, for
// reading.
func openRead(dir *os.File, name string) (*os.File, error) {
	return openFlags(dir, name, readFlags)
}

func openFlags(dir *os.File, name string, flags int) (*os.File, error) {
	fd, err := unix.Openat(int(dir.Fd()), name, flags, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), filepath.Join(dir.Name(), name)), nil
}

// readable is the directory f (O_PATH) opened for reading, under f's
// name; f is closed.
func readable(f *os.File) (*os.File, error) {
	defer f.Close()
	fd, err := unix.Openat(int(f.Fd()), ".", readFlags, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: f.Name(), Err: err}
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}

// step opens the directory name in dir: a real directory, or one a
// trusted symbolic link leads to.
func (w *walker) step(dir *os.File, name string) (*os.File, error) {
	path := filepath.Join(dir.Name(), name)
	for try := 0; ; try++ {
		f, err := openat(dir, name)
		switch {
		case err == nil:
			return f, nil
		case errors.Is(err, unix.ENOENT) && w.mkdir == nil:
			return nil, fmt.Errorf("%s: %w", path, errMissing)
		case errors.Is(err, unix.ENOENT) && try < 3: // then given up: removed as often as made
			if err := w.mkdir(dir, name); err != nil && !errors.Is(err, unix.EEXIST) {
				return nil, &os.PathError{Op: "mkdir", Path: path, Err: err}
			}
			continue // open what is there now
		case errors.Is(err, unix.ELOOP), errors.Is(err, unix.ENOTDIR):
			return w.follow(dir, name)
		}
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
}

// follow resolves the symbolic link name in dir, if the rule lets it.
// The link is opened itself (O_PATH), and its owner and target read from
// that descriptor: nobody can swap it between the check and the reading.
func (w *walker) follow(dir *os.File, name string) (*os.File, error) {
	path := filepath.Join(dir.Name(), name)
	fd, err := unix.Openat(int(dir.Fd()), name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		return nil, fmt.Errorf("%s is not a directory", path)
	}
	if !linkTrusted(&st) {
		return nil, &refusedLink{path, st.Uid}
	}
	if w.links++; w.links > maxLinks {
		return nil, &os.PathError{Op: "open", Path: path, Err: unix.ELOOP}
	}
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(fd, "", buf)
	if err != nil {
		return nil, &os.PathError{Op: "readlink", Path: path, Err: err}
	}
	target := string(buf[:n])
	var cur *os.File
	if filepath.IsAbs(target) {
		cur, err = openPath("/", false)
	} else {
		cur, err = openat(dir, ".")
	}
	if err != nil {
		return nil, err
	}
	for _, part := range strings.Split(target, "/") {
		var next *os.File
		switch part {
		case "", ".":
			continue
		case "..":
			next, err = openat(cur, "..") // never a link: the parent
		default:
			next, err = w.step(cur, part)
		}
		cur.Close()
		if err != nil {
			return nil, err
		}
		cur = next
	}
	return named(cur, path), nil
}

// openPath opens the directory path O_PATH; following a link at its
// last name only if follow says so.
func openPath(path string, follow bool) (*os.File, error) {
	flags := pathFlags
	if follow {
		flags &^= unix.O_NOFOLLOW
	}
	fd, err := unix.Open(path, flags, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// named is f under the name the walk reached it by, for messages: the
// same directory, a new descriptor.
func named(f *os.File, name string) *os.File {
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return f // named by its target: only messages differ
	}
	f.Close()
	return os.NewFile(uintptr(fd), name)
}

// openDirs opens ep's upload/ and .omail-tmp/ under base. With
// mkUpload, missing directories on the way to upload/ are made (750,
// owned like base: ocmpcreateuserdir); without it, a missing one is
// errMissing. With mkTmp, a missing .omail-tmp/ is made (700); without
// it, tmp is left nil. made says whether upload/ (or a directory on its
// way) was made.
func openDirs(base, ep string, mkUpload, mkTmp bool) (d *epDirs, made bool, err error) {
	if err := outbox.CheckEndpoint(ep); err != nil {
		return nil, false, err // one name, never a path
	}
	root, err := openPath(base, true)
	if errors.Is(err, fs.ErrNotExist) && mkUpload {
		// ocmpdir itself, by its path: root's control file names it.
		if err := os.MkdirAll(base, 0o750); err != nil {
			return nil, false, err
		}
		made = true
		root, err = openPath(base, true)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("%s: %w", base, errMissing)
	}
	if err != nil {
		return nil, false, err
	}
	defer root.Close()
	w := &walker{}
	if mkUpload {
		var owner unix.Stat_t
		if err := unix.Fstat(int(root.Fd()), &owner); err != nil {
			return nil, false, err
		}
		w.mkdir = func(dir *os.File, name string) error {
			if err := unix.Mkdirat(int(dir.Fd()), name, 0o750); err != nil {
				return err
			}
			made = true
			return chownMade(dir, name, &owner)
		}
	}
	mail := root
	for _, part := range []string{ep, "mail"} {
		next, err := w.step(mail, part)
		if mail != root {
			mail.Close()
		}
		if err != nil {
			return nil, made, err
		}
		mail = next
	}
	defer mail.Close()
	d = &epDirs{uploadPath: filepath.Join(root.Name(), ep, "mail", "upload"), tmpPath: filepath.Join(root.Name(), ep, "mail", ".omail-tmp")}
	up, err := w.step(mail, "upload")
	if err != nil {
		return nil, made, err
	}
	if d.upload, err = readable(up); err != nil {
		return nil, made, err
	}
	if d.tmp, err = privateDir(mail, d.tmpPath, mkTmp); err != nil {
		d.upload.Close()
		return nil, made, err
	}
	if d.tmp != nil {
		var st unix.Stat_t
		err := unix.Fstat(int(d.tmp.Fd()), &st)
		if err == nil {
			d.tmpID = dirID{dev: uint64(st.Dev), ino: st.Ino, born: bornOf(d.tmp), gen: generationOf(d.tmp)}
			err = sameMount(d.upload, d.tmp)
		}
		if err != nil {
			d.close()
			return nil, made, err
		}
	}
	return d, made, nil
}

// tmpChanged says how d's .omail-tmp/ differs from the one journal j's
// bundles were written in: "" when it is the same one, or when j is an
// older omail's, which does not say.
func (d *epDirs) tmpChanged(j *journal) string {
	switch {
	case j.tmpDir == nil:
		return ""
	case d.tmp == nil:
		return fmt.Sprintf("is gone (the journal's was dev:ino %v)", *j.tmpDir)
	case !d.tmpID.same(*j.tmpDir):
		return fmt.Sprintf("is another directory now (dev:ino %v, the journal's %v)", d.tmpID, *j.tmpDir)
	}
	return ""
}

// inUpload says whether upload/ holds the file name.
func (d *epDirs) inUpload(name string) bool {
	var st unix.Stat_t
	return unix.Fstatat(int(d.upload.Fd()), name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil
}

// errOtherDisk is an upload/ a bundle cannot be renamed into from
// .omail-tmp/.
var errOtherDisk = errors.New("is on another file system (or mount) than .omail-tmp/, so a bundle cannot be renamed into it: refused, the mail stays queued; a link may move <endpoint> or mail/ to another disk, not upload/ alone")

// sameMount checks that upload and tmp are on one mount of one file
// system, as rename needs: a root's link at upload/ alone may lead to
// another disk.
// bornOf is f's birth time in nanoseconds, or 0 where statx or the file
// system does not give one.
func bornOf(f *os.File) uint64 {
	var st unix.Statx_t
	if unix.Statx(int(f.Fd()), "", unix.AT_EMPTY_PATH, unix.STATX_BTIME, &st) != nil || st.Mask&unix.STATX_BTIME == 0 {
		return 0
	}
	return uint64(st.Btime.Sec)*1e9 + uint64(st.Btime.Nsec)
}

// fsIocGetversion is FS_IOC_GETVERSION, _IOR('v', 1, long), which
// golang.org/x/sys/unix does not name; the kernel writes an int.
const fsIocGetversion = 2<<30 | uint(unsafe.Sizeof(uintptr(0)))<<16 | 'v'<<8 | 1

// generationOf is f's inode generation plus one, or 0 where the file
// system does not give one (FS_IOC_GETVERSION: ext2/3/4, XFS, btrfs).
func generationOf(f *os.File) uint64 {
	g, err := unix.IoctlGetUint32(int(f.Fd()), fsIocGetversion)
	if err != nil {
		return 0
	}
	return uint64(g) + 1
}

func sameMount(upload, tmp *os.File) error {
	var a, b unix.Statx_t
	for _, x := range []struct {
		f  *os.File
		st *unix.Statx_t
	}{{upload, &a}, {tmp, &b}} {
		if err := unix.Statx(int(x.f.Fd()), "", unix.AT_EMPTY_PATH, unix.STATX_BASIC_STATS|unix.STATX_MNT_ID, x.st); err != nil {
			return &os.PathError{Op: "statx", Path: x.f.Name(), Err: err}
		}
	}
	if a.Dev_major != b.Dev_major || a.Dev_minor != b.Dev_minor ||
		a.Mask&b.Mask&unix.STATX_MNT_ID != 0 && a.Mnt_id != b.Mnt_id {
		return fmt.Errorf("%s %w", upload.Name(), errOtherDisk)
	}
	return nil
}

// chownMade gives the directory name in dir, just made, the owner and
// group of ocmpdir when we are root: OCMP, which owns ocmpdir, takes the
// bundles from it and removes them, and other local users have no
// business there. Only if it is ours: a user who swapped the name
// meanwhile keeps their own.
func chownMade(dir *os.File, name string, like *unix.Stat_t) error {
	if os.Geteuid() != 0 {
		return nil
	}
	f, err := openat(dir, name)
	if err != nil {
		return err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return err
	}
	if int(st.Uid) != os.Geteuid() {
		return nil
	}
	// fchown does not take an O_PATH descriptor; fchownat of "" does.
	return unix.Fchownat(int(f.Fd()), "", int(like.Uid), int(like.Gid), unix.AT_EMPTY_PATH)
}

// privateDir opens the temporary directory of bundles being written in
// mail, making it (700) if it is missing and create says so. A symbolic
// link there is refused, whoever owns it, and so is a directory that is
// not ours: whoever can change it could swap a bundle before it is
// published. One that a pass of an older omail made 755 is made 700.
func privateDir(mail *os.File, path string, create bool) (*os.File, error) {
	name := filepath.Base(path)
	f, err := openRead(mail, name)
	if errors.Is(err, unix.ENOENT) && create {
		if err := unix.Mkdirat(int(mail.Fd()), name, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, &os.PathError{Op: "mkdir", Path: path, Err: err}
		}
		f, err = openRead(mail, name)
	}
	switch {
	case errors.Is(err, unix.ENOENT) && !create:
		return nil, nil
	case errors.Is(err, unix.ELOOP), errors.Is(err, unix.ENOTDIR):
		return nil, fmt.Errorf("%s is not a directory (a symbolic link is refused there)", path)
	case err != nil:
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, err
	}
	if int(st.Uid) != euid() {
		f.Close()
		return nil, fmt.Errorf("%s is owned by uid %d, not by us: refused", path, st.Uid)
	}
	if st.Mode&0o777 != 0o700 {
		if err := unix.Fchmod(int(f.Fd()), 0o700); err != nil {
			f.Close()
			return nil, &os.PathError{Op: "chmod", Path: path, Err: err}
		}
	}
	return f, nil
}

// dirs opens an endpoint's upload and temporary directories, creating
// upload/ only when ocmpcreateuserdir says so. ok is false when the
// mail has to wait (logged).
func (p *Packer) dirs(ep string) (d *epDirs, ok bool, err error) {
	d, made, err := openDirs(p.base, ep, p.createDirs, true)
	var refused *refusedLink
	switch {
	case errors.As(err, &refused):
		return nil, false, fmt.Errorf("endpoint %s: %w", ep, err)
	case errors.Is(err, errMissing):
		p.Log.Printf("endpoint %s: no directory %s and ocmpcreateuserdir is 0: mail stays queued", ep, filepath.Join(filepath.Clean(p.base), ep, "mail", "upload"))
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("endpoint %s: %w", ep, err)
	}
	if made {
		p.Log.Printf("endpoint %s: created %s", ep, d.uploadPath)
	}
	return d, true, nil
}

// journalDirs opens the directories a journal's bundles were written
// in, for endpoint ep, the same way. A journal names them by path:
// <ocmpdir>/<ep>/mail/.omail-tmp/<id> and <ocmpdir>/<ep>/mail/upload/
// omail-<id>.zst (or .gz), with the ocmpdir of the pass that wrote it.
// A missing .omail-tmp/ is not made (tmp is nil); a missing upload/ is
// made when mkUpload says so (ocmpcreateuserdir, and the journal's
// ocmpdir is today's): OCMP may have taken the bundle and the
// endpoint's directory been removed since.
func journalDirs(ep string, j *journal, mkUpload func(base string) bool) (d *epDirs, made bool, err error) {
	base := ""
	for _, pd := range j.bundles {
		tmpDir, uploadDir := filepath.Dir(pd.tmp), filepath.Dir(pd.upload)
		mail := filepath.Dir(tmpDir)
		b := filepath.Dir(filepath.Dir(mail))
		if filepath.Base(pd.tmp) != pd.id || filepath.Base(tmpDir) != ".omail-tmp" || filepath.Base(mail) != "mail" ||
			filepath.Base(filepath.Dir(mail)) != ep || uploadDir != filepath.Join(mail, "upload") ||
			!bundleFile(pd.id, filepath.Base(pd.upload)) || base != "" && b != base {
			return nil, false, fmt.Errorf("bundle %s: the journal's paths %s and %s are not an endpoint %s's directories; left for a person", pd.id, pd.tmp, pd.upload, ep)
		}
		base = b
	}
	d, made, err = openDirs(base, ep, mkUpload(base), false)
	if err != nil {
		return nil, made, fmt.Errorf("endpoint %s: %w", ep, err)
	}
	return d, made, nil
}

// bundleFile says whether name is a name bundleName gives bundle id.
func bundleFile(id, name string) bool {
	return name == "omail-"+id+".zst" || name == "omail-"+id+".gz"
}

// cleanTmp removes what a crashed pass left in the temporary directory:
// bundles that no journal names. (The outbox and the mbox of one name
// share the directory; each finishes its own journal first, but the
// other's may still be pending.)
func (p *Packer) cleanTmp(ep string, d *epDirs) error {
	r, err := openRead(d.tmp, ".")
	if err != nil {
		return err
	}
	names, err := r.Readdirnames(-1)
	r.Close()
	if err != nil {
		return err
	}
	keep := map[string]bool{}
	for _, jn := range []string{outbox.JournalName, mboxJournal} {
		j, err := readJournal(filepath.Join(outbox.Path(p.Home, ep), jn))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if j != nil {
			for _, pd := range j.bundles {
				keep[filepath.Base(pd.tmp)] = true
			}
		}
	}
	for _, n := range names {
		if bundle.ValidID(n) && !keep[n] {
			p.Log.Printf("endpoint %s: removing unfinished bundle %s", ep, n)
			if err := d.removeTmp(n); err != nil {
				return err
			}
		}
	}
	return nil
}

// removeTmp removes the file name from the temporary directory.
func (d *epDirs) removeTmp(name string) error {
	if err := unix.Unlinkat(int(d.tmp.Fd()), name, 0); err != nil {
		return &os.PathError{Op: "remove", Path: filepath.Join(d.tmpPath, name), Err: err}
	}
	return nil
}
