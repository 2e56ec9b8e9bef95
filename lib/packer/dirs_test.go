package packer

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"omail/lib/crashpoint"
	"omail/lib/eventlog"
	"omail/lib/internal/testfake"
	"omail/lib/outbox"
	"omail/lib/safefile"
)

// linkMaker makes root's and a user's symbolic links. As root, a user's
// is given to another uid; as anyone else, the pass is told which links
// stand for root's (linkTrusted), and all others are a user's.
type linkMaker struct {
	t     *testing.T
	roots map[uint64]bool // inodes of the links that are root's
}

func newLinkMaker(t *testing.T) *linkMaker {
	m := &linkMaker{t: t, roots: map[uint64]bool{}}
	if os.Geteuid() != 0 {
		old := linkTrusted
		linkTrusted = func(st *unix.Stat_t) bool { return m.roots[st.Ino] }
		t.Cleanup(func() { linkTrusted = old })
	}
	return m
}

func (m *linkMaker) link(target, at string, root bool) {
	m.t.Helper()
	if err := os.Symlink(target, at); err != nil {
		m.t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if !root {
			if err := os.Lchown(at, 4321, 4321); err != nil {
				m.t.Fatal(err)
			}
		}
		return
	}
	if root {
		var st unix.Stat_t
		if err := unix.Lstat(at, &st); err != nil {
			m.t.Fatal(err)
		}
		m.roots[st.Ino] = true
	}
}

// mailTree makes dir as an endpoint's mail/ directory: upload/ and
// .omail-tmp/ in it, as a user would prepare the directory they point
// root at.
func mailTree(t *testing.T, dir string) {
	t.Helper()
	for _, d := range []string{"upload", ".omail-tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// filesUnder lists the regular files under dir.
func filesUnder(dir string) []string {
	var found []string
	filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			found = append(found, path)
		}
		return nil
	})
	return found
}

// logged gives p a log the test reads.
func logged(p *Packer) *testfake.Log {
	l := &testfake.Log{}
	p.Log = eventlog.New(l, "omail-pack")
	return l
}

// Root's link (an admin who moved upload/ to another disk) is followed,
// but every link met on the way to its target is judged by the same
// rule: a user who owns a directory there cannot put a link of their own
// in it and so point root elsewhere. The mail stays in the outbox, and
// the pass says why.
func TestLinkBehindRootsLink(t *testing.T) {
	for _, at := range []string{"disk/k/upload", "disk/k"} {
		t.Run(strings.ReplaceAll(at, "/", "-"), func(t *testing.T) {
			p, h := setup(t)
			log := logged(p)
			lm := newLinkMaker(t)
			base := filepath.Join(h, "ocmp")
			os.MkdirAll(filepath.Join(base, "k", "mail"), 0o755)
			disk := filepath.Join(h, "disk")
			os.MkdirAll(disk, 0o755)
			evil := filepath.Join(h, "evil") // where the user wants root to write
			mailTree(t, evil)
			// root's link, as the admin made it
			lm.link(filepath.Join(disk, "k", "upload"), filepath.Join(base, "k", "mail", "upload"), true)
			// the user's link behind it
			if at == "disk/k" {
				lm.link(evil, filepath.Join(disk, "k"), false)
			} else {
				os.MkdirAll(filepath.Join(disk, "k"), 0o755)
				lm.link(filepath.Join(evil, "upload"), filepath.Join(disk, "k", "upload"), false)
			}
			putEntry(t, h, "k", "1700000000.1.1.1", "Subject: 1\n", "r@x")
			if err := p.Pass(); err == nil {
				t.Error("the pass followed a user's link behind root's")
			}
			if found := filesUnder(evil); len(found) > 0 {
				t.Errorf("written through the user's link: %v", found)
			}
			if n := len(readDirNames(t, outbox.Path(h, "k"))); n != 1 {
				t.Errorf("outbox holds %d entries, want the 1 still there", n)
			}
			if want := filepath.Join(h, at) + " is a symbolic link owned by uid"; !strings.Contains(log.String(), want) {
				t.Errorf("the log does not say %q:\n%s", want, log)
			}

			// The user's link replaced by a real directory: root's link
			// is followed to it.
			os.Remove(filepath.Join(h, at))
			os.MkdirAll(filepath.Join(disk, "k", "upload"), 0o755)
			if err := p.Pass(); err != nil {
				t.Fatalf("pass through root's link: %v", err)
			}
			if files, _ := filepath.Glob(filepath.Join(disk, "k", "upload", "omail-*")); len(files) != 1 {
				t.Errorf("bundles through root's link: %v", files)
			}
		})
	}
}

// A pass works in the directories it opened: a user who owns an
// endpoint's directory and swaps mail/ or upload/ for a link of their
// own while a pass runs (before the bundle is made, before it is
// journalled, just before it is renamed into upload/) does not move
// where root writes. The bundle lands in the upload/ the pass opened,
// nothing in the user's directory, and no mail is lost.
func TestLinkSwappedDuringPass(t *testing.T) {
	for _, swap := range []string{"k/mail", "k/mail/upload"} {
		for _, point := range []string{"pack-mbox-measured", "pack-written", "pack-publish-rename"} {
			t.Run(strings.ReplaceAll(swap, "/", "-")+"-at-"+point, func(t *testing.T) {
				spool := point == "pack-mbox-measured"
				p, h := setup(t)
				lm := newLinkMaker(t)
				base := filepath.Join(h, "ocmp")
				mailTree(t, filepath.Join(base, "k", "mail"))
				evil := filepath.Join(h, "evil")
				mailTree(t, evil)
				if spool {
					os.WriteFile(filepath.Join(h, "control", "proxyscanmail"), []byte("1\n"), 0o644)
					spoolAdd(t, filepath.Join(h, "spool", "k"), "s@x", "Subject: 1\n")
				} else {
					putEntry(t, h, "k", "1700000000.1.1.1", "Subject: 1\n", "r@x")
				}
				// The real directory is moved aside, and the user's link
				// put in its place, once, at the point.
				real := filepath.Join(base, swap)
				target := evil
				if swap == "k/mail/upload" {
					target = filepath.Join(evil, "upload")
				}
				swapped := false
				p.Crash = func(at string) {
					if at != point || swapped {
						return
					}
					swapped = true
					if err := os.Rename(real, real+".real"); err != nil {
						t.Error(err)
					}
					lm.link(target, real, false)
				}
				if err := p.Pass(); err != nil {
					t.Fatal(err)
				}
				if !swapped {
					t.Fatalf("the pass never reached %s", point)
				}
				if found := filesUnder(evil); len(found) > 0 {
					t.Errorf("written through the user's link: %v", found)
				}
				upload := filepath.Join(base, "k", "mail", "upload")
				if swap == "k/mail" {
					upload = filepath.Join(base, "k", "mail.real", "upload")
				} else {
					upload += ".real"
				}
				if files, _ := filepath.Glob(filepath.Join(upload, "omail-*")); len(files) != 1 {
					t.Errorf("bundles in the upload/ the pass opened: %v", files)
				}
				if n := len(readDirNames(t, outbox.Path(h, "k"))); n != 0 {
					t.Errorf("outbox holds %d entries", n)
				}
				// The next pass refuses the user's link.
				p.Crash = nil
				putEntry(t, h, "k", "1700000000.2.1.1", "Subject: 2\n", "r@x")
				if err := p.Pass(); err == nil {
					t.Error("the next pass followed the user's link")
				}
				if found := filesUnder(evil); len(found) > 0 {
					t.Errorf("written through the user's link: %v", found)
				}
			})
		}
	}
}

// Finishing a crashed pass's journal opens the directories it names the
// same way: a user's link put there since is refused (the journal and
// the mail wait), and once it is gone the bundle is published where it
// was written, once.
func TestJournalRecoveryRefusesLink(t *testing.T) {
	p, h := setup(t)
	log := logged(p)
	lm := newLinkMaker(t)
	base := filepath.Join(h, "ocmp")
	mailTree(t, filepath.Join(base, "k", "mail"))
	evil := filepath.Join(h, "evil")
	mailTree(t, evil)
	putEntry(t, h, "k", "1700000000.1.1.1", "Subject: 1\n", "r@x")
	hk, err := crashpoint.Parse("", "", "", "pack-publish-rename=EIO")
	if err != nil {
		t.Fatal(err)
	}
	p.Crash = hk
	if err := p.Pass(); err == nil {
		t.Fatal("the pass with a failed rename succeeded")
	}
	p.Crash = nil
	journal := filepath.Join(outbox.Path(h, "k"), outbox.JournalName)
	if _, err := os.Stat(journal); err != nil {
		t.Fatalf("no journal after the failed rename: %v", err)
	}
	mail := filepath.Join(base, "k", "mail")
	os.Rename(mail, mail+".real")
	lm.link(evil, mail, false)
	if err := p.Pass(); err == nil {
		t.Error("the journal was finished through a user's link")
	}
	if found := filesUnder(evil); len(found) > 0 {
		t.Errorf("written through the user's link: %v", found)
	}
	if !strings.Contains(log.String(), mail+" is a symbolic link owned by uid") {
		t.Errorf("the log does not say why:\n%s", log)
	}
	if _, err := os.Stat(journal); err != nil {
		t.Errorf("the journal is gone: %v", err)
	}
	os.Remove(mail)
	os.Rename(mail+".real", mail)
	passAll(t, p, h, "k", 1)
}

// passAll runs a pass of p that must pack everything: the bundles of
// endpoint ep then hold n messages, and its outbox is empty.
func passAll(t *testing.T, p *Packer, h, ep string, n int) {
	t.Helper()
	if err := p.Pass(); err != nil {
		t.Fatal(err)
	}
	if got := readBundles(t, h, ep); len(got) != n {
		t.Errorf("bundles hold %q, want %d messages", got, n)
	}
	if left := readDirNames(t, outbox.Path(h, ep)); len(left) != 0 {
		t.Errorf("outbox holds %v", left)
	}
}

// A journal's bundle paths must be an endpoint's directories: what else
// it names is left for a person, not opened.
func TestJournalDirsPaths(t *testing.T) {
	base := t.TempDir()
	mailTree(t, filepath.Join(base, "k", "mail"))
	const id = "0123456789abcdef0123456789abcdef"
	tmp := filepath.Join(base, "k", "mail", ".omail-tmp", id)
	upload := filepath.Join(base, "k", "mail", "upload", "omail-"+id+".zst")
	ok := pending{id, tmp, upload}
	for _, c := range []struct {
		name string
		pd   pending
	}{
		{"another endpoint", pending{id, filepath.Join(base, "j", "mail", ".omail-tmp", id), filepath.Join(base, "j", "mail", "upload", "omail-"+id+".zst")}},
		{"another directory", pending{id, tmp, "/etc/omail-" + id + ".zst"}},
		{"another ocmpdir", pending{id, "/o/k/mail/.omail-tmp/" + id, "/o/k/mail/upload/omail-" + id + ".zst"}},
		{"another name", pending{id, filepath.Join(filepath.Dir(tmp), "x"), upload}},
		{"not a bundle's name", pending{id, tmp, filepath.Join(filepath.Dir(upload), "passwd")}},
	} {
		_, _, err := journalDirs("k", &journal{bundles: []pending{ok, c.pd}}, func(string) bool { return false })
		if err == nil || !strings.Contains(err.Error(), "left for a person") {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	d, _, err := journalDirs("k", &journal{bundles: []pending{ok, {id, tmp, filepath.Join(filepath.Dir(upload), "omail-"+id+".gz")}}}, func(string) bool { return false })
	if err != nil {
		t.Fatalf("a journal's own paths: %v", err)
	}
	if d.uploadPath != filepath.Dir(upload) || d.tmpPath != filepath.Dir(tmp) || d.tmp == nil {
		t.Errorf("opened %s and %s", d.uploadPath, d.tmpPath)
	}
	d.close()
}

// The temporary directory is omail-pack's own: whoever could change it
// could swap a bundle before it is published. A symbolic link there is
// refused, even root's, and so is a directory another user owns; the
// mail stays in the outbox.
func TestTmpDirRefused(t *testing.T) {
	for _, c := range []string{"link", "another's"} {
		t.Run(c, func(t *testing.T) {
			p, h := setup(t)
			log := logged(p)
			mail := filepath.Join(h, "ocmp", "k", "mail")
			os.MkdirAll(filepath.Join(mail, "upload"), 0o755)
			tmp := filepath.Join(mail, ".omail-tmp")
			elsewhere := filepath.Join(h, "elsewhere")
			os.MkdirAll(elsewhere, 0o700)
			why := "is not a directory (a symbolic link is refused there)"
			if c == "link" {
				newLinkMaker(t).link(elsewhere, tmp, true)
			} else {
				os.Mkdir(tmp, 0o700)
				why = "not by us: refused"
				if os.Geteuid() == 0 {
					if err := os.Chown(tmp, 4321, 4321); err != nil {
						t.Fatal(err)
					}
				} else {
					old := euid
					euid = func() int { return os.Geteuid() + 1 }
					t.Cleanup(func() { euid = old })
				}
			}
			putEntry(t, h, "k", "1700000000.1.1.1", "Subject: 1\n", "r@x")
			if err := p.Pass(); err == nil {
				t.Error("the pass took a temporary directory not its own")
			}
			if l := log.String(); !strings.Contains(l, tmp) || !strings.Contains(l, why) {
				t.Errorf("the log does not say %q:\n%s", why, log)
			}
			if found := filesUnder(elsewhere); len(found) > 0 {
				t.Errorf("written through the link: %v", found)
			}
			if found := filesUnder(tmp); len(found) > 0 {
				t.Errorf("written in another's directory: %v", found)
			}
			if n := len(readDirNames(t, outbox.Path(h, "k"))); n != 1 {
				t.Errorf("outbox holds %d entries, want the 1 still there", n)
			}
		})
	}
}

// searchOnlyTree makes, under a new directory, what a non-root pass
// meets when ocmpdir, an endpoint's directory (a home-like one) and the
// directories in a root's link's target are search-only for it:
// ocmp/n1 leads to mail/ by real directories, ocmp/n2/mail is root's
// link to disk/d/mail. As root, the search-only ones are root's 711 and
// the rest is uid 65534's, the user the pass then runs as (asNobody);
// as anyone else they are our own 311 ones (no read for us either).
// .omail-tmp/ is 755, so the pass fchmods it. It returns ocmpdir.
func searchOnlyTree(t *testing.T) string {
	t.Helper()
	top, err := os.MkdirTemp("", "packer-711-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		filepath.Walk(top, func(path string, fi os.FileInfo, err error) error {
			if err == nil && fi.IsDir() {
				os.Chmod(path, 0o755)
			}
			return nil
		})
		os.RemoveAll(top)
	})
	base := filepath.Join(top, "ocmp")
	if err := os.MkdirAll(filepath.Join(base, "n2"), 0o755); err != nil {
		t.Fatal(err)
	}
	newLinkMaker(t).link(filepath.Join(top, "disk", "d", "mail"), filepath.Join(base, "n2", "mail"), true)
	for _, m := range []string{filepath.Join(base, "n1", "mail"), filepath.Join(top, "disk", "d", "mail")} {
		mailTree(t, m)
		for _, d := range []string{m, filepath.Join(m, "upload"), filepath.Join(m, ".omail-tmp")} {
			if os.Geteuid() == 0 {
				if err := os.Chown(d, 65534, 65534); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	for _, d := range []string{top, base, filepath.Join(base, "n1"), filepath.Join(base, "n2"), filepath.Join(top, "disk"), filepath.Join(top, "disk", "d")} {
		mode := os.FileMode(0o311)
		if os.Geteuid() == 0 {
			mode = 0o711
		}
		if err := os.Chmod(d, mode); err != nil {
			t.Fatal(err)
		}
	}
	return base
}

// asNobody runs f as the user searchOnlyTree's directories are not
// readable for. As root: on a thread of its own whose file-system uid
// and gid are 65534 (which drops the file capabilities of that thread
// only; the thread ends with f), with euid telling the pass it runs as
// 65534. As anyone else: as we are.
func asNobody(t *testing.T, f func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		f()
		return
	}
	old := euid
	euid = func() int { return 65534 }
	defer func() { euid = old }()
	done := make(chan bool)
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if err := unix.Setfsgid(65534); err != nil {
			t.Error(err)
			return
		}
		if err := unix.Setfsuid(65534); err != nil {
			t.Error(err)
			return
		}
		if now, _ := unix.SetfsuidRetUid(-1); now != 65534 {
			t.Errorf("file-system uid %d, not 65534", now)
			return
		}
		f()
	}()
	<-done
}

// A pass that does not run as root needs only search permission on the
// directories on the way to upload/, as a walk by path does: ocmpdir,
// a home-like <endpoint> 711, and the directories in a root's link's
// target. Only upload/ and .omail-tmp/ are read (fsynced, fchmodded).
func TestSearchOnlyDirectoriesOnTheWay(t *testing.T) {
	base := searchOnlyTree(t)
	for _, ep := range []string{"n1", "n2"} {
		asNobody(t, func() {
			d, _, err := openDirs(base, ep, false, true)
			if err != nil {
				t.Errorf("%s: %v", ep, err)
				return
			}
			defer d.close()
			for _, f := range []*os.File{d.upload, d.tmp} {
				if err := safefile.SyncDirOf(f); err != nil {
					t.Errorf("%s: sync %s: %v", ep, f.Name(), err)
				}
			}
			var st unix.Stat_t
			if err := unix.Fstat(int(d.tmp.Fd()), &st); err != nil || st.Mode&0o777 != 0o700 {
				t.Errorf("%s: .omail-tmp mode %o, %v", ep, st.Mode&0o777, err)
			}
		})
	}
}

// otherDisk is a new directory on another file system than t.TempDir():
// /dev/shm (tmpfs) or, when the temporary directories are there, the
// package's own directory.
func otherDisk(t *testing.T) string {
	t.Helper()
	var here unix.Stat_t
	if err := unix.Stat(t.TempDir(), &here); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"/dev/shm", "."} {
		var st unix.Stat_t
		if unix.Stat(dir, &st) != nil || st.Dev == here.Dev {
			continue
		}
		d, err := os.MkdirTemp(dir, "packer-disk-")
		if err != nil {
			continue
		}
		d, _ = filepath.Abs(d)
		t.Cleanup(func() { os.RemoveAll(d) })
		return d
	}
	t.Fatal("no directory on another file system than the temporary ones (/dev/shm, .)")
	return ""
}

// A root's link at upload/ alone to another disk: a bundle cannot be
// renamed there from .omail-tmp/. The pass refuses the endpoint before
// it writes a bundle, and says why; the mail stays in the outbox and no
// journal is left. A link at mail/ to the other disk works.
func TestUploadOnAnotherFileSystem(t *testing.T) {
	p, h := setup(t)
	log := logged(p)
	lm := newLinkMaker(t)
	base := filepath.Join(h, "ocmp")
	disk := otherDisk(t)
	os.MkdirAll(filepath.Join(base, "k", "mail"), 0o755)
	os.MkdirAll(filepath.Join(disk, "k", "upload"), 0o755)
	upload := filepath.Join(base, "k", "mail", "upload")
	lm.link(filepath.Join(disk, "k", "upload"), upload, true)
	putEntry(t, h, "k", "1700000000.1.1.1", "Subject: 1\n", "r@x")
	for pass := 1; pass <= 2; pass++ {
		if err := p.Pass(); err == nil {
			t.Errorf("pass %d: upload/ on another disk was taken", pass)
		}
		if want := upload + " is on another file system"; !strings.Contains(log.String(), want) {
			t.Errorf("the log does not say %q:\n%s", want, log)
		}
		if strings.Contains(log.String(), "cross-device") {
			t.Errorf("a bundle was written and its rename failed:\n%s", log)
		}
		if found := append(filesUnder(disk), filesUnder(filepath.Join(base, "k"))...); len(found) > 0 {
			t.Errorf("pass %d wrote %v", pass, found)
		}
		if got := readDirNames(t, outbox.Path(h, "k")); len(got) != 1 || got[0] != "1700000000.1.1.1" {
			t.Errorf("pass %d: outbox holds %v, want the entry alone (no journal)", pass, got)
		}
	}

	// mail/ on the other disk, .omail-tmp/ with it: packed there.
	os.RemoveAll(filepath.Join(base, "k", "mail"))
	lm.link(filepath.Join(disk, "k"), filepath.Join(base, "k", "mail"), true)
	if err := p.Pass(); err != nil {
		t.Fatalf("pass with mail/ on the other disk: %v", err)
	}
	if files, _ := filepath.Glob(filepath.Join(disk, "k", "upload", "omail-*")); len(files) != 1 {
		t.Errorf("bundles on the other disk: %v", files)
	}
}

// crashAt runs a pass of p that fails at the crash point spec (a
// journal is left), and then takes the hook away.
func crashAt(t *testing.T, p *Packer, spec string) {
	t.Helper()
	hk, err := crashpoint.Parse("", "", "", spec)
	if err != nil {
		t.Fatal(err)
	}
	p.Crash = hk
	if err := p.Pass(); err == nil {
		t.Fatalf("pass with %s succeeded", spec)
	}
	p.Crash = nil
}

// A crash after the journal, with the bundle still in .omail-tmp/; then
// the endpoint's mail/ is moved (to a new disk, say) and given a fresh
// upload/ before the next pass. The journal records which .omail-tmp/
// held the bundle: the one there now is not it (gone, or another one),
// and upload/ does not hold the bundle, so the journal and its mail
// are left for a person, not taken as published. Once the person puts
// the bundle into upload/, the next pass finishes the journal.
func TestJournalRecoveryTreeMoved(t *testing.T) {
	for _, tmp := range []string{"gone", "another"} {
		t.Run(tmp, func(t *testing.T) {
			p, h := setup(t)
			log := logged(p)
			mail := filepath.Join(h, "ocmp", "k", "mail")
			putEntry(t, h, "k", "1700000000.1.1.1", "Subject: 1\n", "r@x")
			crashAt(t, p, "pack-publish-rename=EIO")
			old := filepath.Join(h, "old-mail")
			if err := os.Rename(mail, old); err != nil {
				t.Fatal(err)
			}
			os.MkdirAll(filepath.Join(mail, "upload"), 0o750)
			if tmp == "another" {
				os.Mkdir(filepath.Join(mail, ".omail-tmp"), 0o700)
			}
			putEntry(t, h, "k", "1700000000.2.1.1", "Subject: 2\n", "r@x")
			for pass := 1; pass <= 2; pass++ {
				if err := p.Pass(); err == nil {
					t.Errorf("pass %d finished the journal", pass)
				}
				if n := len(readDirNames(t, outbox.Path(h, "k"))); n != 2 {
					t.Errorf("pass %d: outbox holds %d entries, want 2", pass, n)
				}
				if _, err := os.Stat(filepath.Join(outbox.Path(h, "k"), outbox.JournalName)); err != nil {
					t.Errorf("pass %d: the journal is gone: %v", pass, err)
				}
				if files := filesUnder(mail); len(files) > 0 {
					t.Errorf("pass %d: %v", pass, files)
				}
			}
			if want := "left for a person"; !strings.Contains(log.String(), want) {
				t.Errorf("the log does not say %q:\n%s", want, log)
			}
			// The person moves the bundle into upload/, under the name
			// the journal gives.
			ids := readDirNames(t, filepath.Join(old, ".omail-tmp"))
			if len(ids) != 1 {
				t.Fatalf("old .omail-tmp/ holds %v", ids)
			}
			if err := os.Rename(filepath.Join(old, ".omail-tmp", ids[0]), filepath.Join(mail, "upload", "omail-"+ids[0]+".zst")); err != nil {
				t.Fatal(err)
			}
			passAll(t, p, h, "k", 2)
		})
	}
}

// A crash after the bundle was renamed into upload/ (journal still
// there); OCMP then takes the bundle and the endpoint's upload/ is
// removed. With ocmpcreateuserdir the next pass makes upload/ again:
// .omail-tmp/ is the one the bundle was written in and no longer holds
// it, so it was published; the journal is finished and new mail packed.
// With the whole endpoint directory removed, .omail-tmp/ is gone too,
// which a moved tree also looks like: the journal waits for a person.
func TestJournalRecoveryUploadRemoved(t *testing.T) {
	for _, gone := range []string{"k/mail/upload", "k"} {
		t.Run(strings.ReplaceAll(gone, "/", "-"), func(t *testing.T) {
			p, h := setup(t)
			log := logged(p)
			base := filepath.Join(h, "ocmp")
			putEntry(t, h, "k", "1700000000.1.1.1", "Subject: 1\n", "r@x")
			crashAt(t, p, "pack-publish-dirsync=EIO")
			if files, _ := filepath.Glob(filepath.Join(base, "k", "mail", "upload", "omail-*")); len(files) != 1 {
				t.Fatalf("not published: %v", files)
			}
			os.RemoveAll(filepath.Join(base, gone))
			putEntry(t, h, "k", "1700000000.2.1.1", "Subject: 2\n", "r@x")
			err := p.Pass()
			left := readDirNames(t, outbox.Path(h, "k"))
			if gone == "k" {
				if err == nil || len(left) != 2 || !strings.Contains(log.String(), "is gone") {
					t.Errorf("pass: %v; outbox: %v; want both entries left, and why:\n%s", err, left, log)
				}
				if _, err := os.Stat(filepath.Join(outbox.Path(h, "k"), outbox.JournalName)); err != nil {
					t.Errorf("the journal is gone: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("pass after upload/ was removed: %v", err)
			}
			if len(left) != 0 {
				t.Errorf("outbox holds %v", left)
			}
			if got := readBundles(t, h, "k"); len(got) != 1 || !strings.Contains(got[0], "Subject: 2") {
				t.Errorf("bundles hold %q, want the new message", got)
			}
			if want := "created " + filepath.Join(base, "k", "mail", "upload"); !strings.Contains(log.String(), want) {
				t.Errorf("the log does not say %q:\n%s", want, log)
			}
		})
	}
}

// A journal of an older omail names no .omail-tmp/ identity: a bundle
// that is not in .omail-tmp/ (or with that directory gone) is taken as
// published, as before. (With the line, the same journal waits for a
// person: TestJournalRecoveryUploadRemoved.)
func TestJournalRecoveryOlderJournal(t *testing.T) {
	p, h := setup(t)
	j, jpath := crashedJournal(t, p, h, "pack-publish-dirsync=EIO")
	if j.tmpDir == nil {
		t.Fatalf("journal %+v: want one with tmpdir", j)
	}
	j.tmpDir = nil
	writeJournal(t, jpath, j)
	// OCMP took the bundle; .omail-tmp/ is removed.
	mail := filepath.Join(h, "ocmp", "k", "mail")
	files, _ := filepath.Glob(filepath.Join(mail, "upload", "omail-*"))
	for _, f := range files {
		os.Remove(f)
	}
	os.RemoveAll(filepath.Join(mail, ".omail-tmp"))
	if err := p.Pass(); err != nil {
		t.Fatal(err)
	}
	if left := readDirNames(t, outbox.Path(h, "k")); len(files) != 1 || len(left) != 0 {
		t.Errorf("bundles taken by OCMP: %v; outbox holds %v", files, left)
	}
}

// A journal of an older omail (no tmpdir line) whose bundle stayed in
// .omail-tmp/ (the rename failed), then mail/ moved away and not yet
// linked back: recovery must not make upload/ again, find no
// .omail-tmp/ there and take the bundle for published. The journal and
// the mail wait, as before the tmpdir line existed.
func TestOldJournalRecoveryMakesNoUpload(t *testing.T) {
	p, h := setup(t)
	j, jpath := crashedJournal(t, p, h, "pack-publish-rename=EIO")
	j.tmpDir = nil // as an older omail wrote it
	writeJournal(t, jpath, j)
	mail := filepath.Join(h, "ocmp", "k", "mail")
	moved := filepath.Join(h, "newdisk-mail")
	if err := os.Rename(mail, moved); err != nil {
		t.Fatal(err)
	}
	if err := p.Pass(); err == nil {
		t.Error("the pass finished a journal whose bundle is in no upload/")
	}
	if left := readDirNames(t, outbox.Path(h, "k")); len(left) != 1 {
		t.Errorf("outbox holds %v, want the entry kept", left)
	}
	if _, err := os.Stat(jpath); err != nil {
		t.Errorf("journal: %v, want it kept for a person", err)
	}
}

// ext4 gives a directory made after one was removed the same inode, so
// a .omail-tmp/ made again after mail/ was moved away (copied, then
// removed, as mv does across disks) can have the journal's dev:ino: its
// birth time, or its inode's generation, tells them apart, and where
// the journal knows neither (a journal of an earlier build) the
// directory counts as another. Each case makes the journal's
// .omail-tmp/ differ from today's in that one way.
func TestJournalRecoveryTmpMadeAgain(t *testing.T) {
	for _, c := range []struct {
		name  string
		alter func(id *dirID)
	}{
		{"born", func(id *dirID) { id.born-- }},
		{"generation", func(id *dirID) { id.gen++ }},
		{"neither known", func(id *dirID) { id.born, id.gen = 0, 0 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, h := setup(t)
			j, jpath := crashedJournal(t, p, h, "pack-publish-rename=EIO")
			tmp := filepath.Join(h, "ocmp", "k", "mail", ".omail-tmp")
			d, err := os.Open(tmp)
			if err != nil {
				t.Fatal(err)
			}
			born, gen := bornOf(d), generationOf(d)
			d.Close()
			if born == 0 || gen == 0 {
				t.Fatalf("birth %d, generation+1 %d for .omail-tmp/: the test needs both (ext4)", born, gen)
			}
			if j.tmpDir == nil || j.tmpDir.born != born || j.tmpDir.gen != gen {
				t.Fatalf("journal's tmpdir %v, want birth %d and generation+1 %d", j.tmpDir, born, gen)
			}
			// The bundle went with the old directory.
			for _, id := range readDirNames(t, tmp) {
				os.Remove(filepath.Join(tmp, id))
			}
			c.alter(j.tmpDir)
			writeJournal(t, jpath, j)
			if err := p.Pass(); err == nil {
				t.Error("the pass took the bundle for published")
			}
			if left := readDirNames(t, outbox.Path(h, "k")); len(left) != 1 {
				t.Errorf("outbox holds %v, want the entry kept", left)
			}
		})
	}
}

// crashedJournal queues a message for endpoint k, makes the pass that
// packs it fail at spec, and returns the journal it left and its path,
// for a test to alter (writeJournal) before the next pass.
func crashedJournal(t *testing.T, p *Packer, h, spec string) (*journal, string) {
	t.Helper()
	putEntry(t, h, "k", "1700000000.1.1.1", "Subject: 1\n", "r@x")
	crashAt(t, p, spec)
	jpath := filepath.Join(outbox.Path(h, "k"), outbox.JournalName)
	j, err := readJournal(jpath)
	if err != nil {
		t.Fatal(err)
	}
	return j, jpath
}

// writeJournal puts j back at path.
func writeJournal(t *testing.T, path string, j *journal) {
	t.Helper()
	if err := os.WriteFile(path, j.marshal(), 0o640); err != nil {
		t.Fatal(err)
	}
}
