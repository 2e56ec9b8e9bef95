package packer

import (
	"crypto/ed25519"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"omail/lib/bundle"
	"omail/lib/eventlog"
	"omail/lib/internal/testfake"
	"omail/lib/ocmpkey"
	"omail/lib/outbox"
)

func TestBatches(t *testing.T) {
	var msgs []source
	for _, n := range []int64{10, 10, 10, 50, 5, 5} {
		msgs = append(msgs, source{size: n})
	}
	var got []string
	for _, b := range batches(msgs, 20) {
		var s []string
		for _, m := range b {
			s = append(s, fmt.Sprint(m.size))
		}
		got = append(got, strings.Join(s, "+"))
	}
	if strings.Join(got, " ") != "10+10 10 50 5+5" {
		t.Errorf("batches %v", got)
	}
}

func setup(t *testing.T) (*Packer, string) {
	h := t.TempDir()
	os.MkdirAll(filepath.Join(h, "control"), 0o755)
	ctl := func(name, v string) { os.WriteFile(filepath.Join(h, "control", name), []byte(v+"\n"), 0o644) }
	ctl("ocmpdir", filepath.Join(h, "ocmp"))
	ctl("mailspool", filepath.Join(h, "spool"))
	ctl("ocmpcreateuserdir", "1")
	os.MkdirAll(filepath.Join(h, "spool"), 0o755)
	if _, _, err := ocmpkey.Generate(filepath.Join(h, "control", ocmpkey.File)); err != nil {
		t.Fatal(err)
	}
	return &Packer{Home: h, Log: eventlog.New(&testfake.Log{}, "omail-pack")}, h
}

// homeKey is the public key of home h (setup made it): the signer a
// version 3 bundle's key id names.
func homeKey(t *testing.T, h string) ed25519.PublicKey {
	key, err := ocmpkey.Load(filepath.Join(h, "control", ocmpkey.File))
	if err != nil {
		t.Fatal(err)
	}
	return key.Public().(ed25519.PublicKey)
}

// readBundles returns the messages of every bundle for an endpoint.
func readBundles(t *testing.T, h, ep string) []string {
	files, _ := filepath.Glob(filepath.Join(h, "ocmp", ep, "mail", "upload", "*"))
	pub := homeKey(t, h)
	var out []string
	for _, f := range files {
		fd, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		r, err := bundle.NewReader(fd, pub) // a version 3 bundle names its signer by key id only
		if err != nil {
			t.Fatal(err)
		}
		for {
			m, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(m.Body)
			if r.Header.Signer != nil {
				t.Fatal("signed before the end was read")
			}
			out = append(out, m.Sender+">"+strings.Join(m.Rcpts, ",")+":"+string(b))
		}
		key, _ := ocmpkey.Load(filepath.Join(h, "control", ocmpkey.File))
		if !r.Header.Signer.Equal(key.Public()) {
			t.Errorf("%s: signed by %x, not the home's key", f, r.Header.Signer)
		}
		r.Close()
		fd.Close()
	}
	return out
}

func TestWatch(t *testing.T) {
	p, h := setup(t)
	msg := filepath.Join(h, "m")
	os.WriteFile(msg, []byte("Subject: x\n"), 0o644)
	wake, stop := make(chan struct{}), make(chan struct{})
	passes := make(chan error)
	done := make(chan struct{})
	go func() { p.Watch(wake, stop, func(err error) { passes <- err }); close(done) }()
	if err := <-passes; err != nil {
		t.Fatal(err)
	}
	if err := outbox.Put(h, "k1", "1", msg, "a@b", []string{"c@d"}); err != nil {
		t.Fatal(err)
	}
	wake <- struct{}{}
	if err := <-passes; err != nil {
		t.Fatal(err)
	}
	if got := readBundles(t, h, "k1"); len(got) != 1 || got[0] != "a@b>c@d:Subject: x\n" {
		t.Errorf("bundles hold %q", got)
	}
	close(stop)
	<-done
}

// TestMboxTail: mail appended to the mbox while it is packed, by a
// deliverer that takes the locks (it waits) and by one that does not
// (its bytes are moved to the front), stays for the next pass.
func TestMboxTail(t *testing.T) {
	p, h := setup(t)
	os.WriteFile(filepath.Join(h, "control", "proxyscanmail"), []byte("1\n"), 0o644)
	path := filepath.Join(h, "spool", "bob")
	add := func(sender, body string) { spoolAdd(t, path, sender, body) }
	add("one@x", "Subject: 1\n\nFrom a\n")
	add("two@x", "Subject: 2\n")
	var wg sync.WaitGroup
	p.Crash = func(point string) {
		if point != "pack-mbox-measured" {
			return
		}
		wg.Add(1)
		go func() { defer wg.Done(); add("late@x", "Subject: late\n") }()
		rogueAppend(path, "From rogue@x Thu Jan  1 00:00:00 1970\nSubject: rogue\n\n")
	}
	if err := p.Pass(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	got := readBundles(t, h, "bob")
	if strings.Join(got, "|") != "one@x>bob:Subject: 1\n\nFrom a\n|two@x>bob:Subject: 2\n" {
		t.Errorf("first pass packed %q", got)
	}
	left, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(left), "From rogue@x ") || !strings.Contains(string(left), "Subject: late") {
		t.Errorf("mbox after the pass: %q", left)
	}
	p.Crash = nil
	if err := p.Pass(); err != nil {
		t.Fatal(err)
	}
	if got := readBundles(t, h, "bob"); len(got) != 4 {
		t.Errorf("after the second pass: %q", got)
	}
	if fi, _ := os.Stat(path); fi.Size() != 0 {
		t.Errorf("mbox holds %d bytes", fi.Size())
	}
}

// Bundles hold mail, with proxyscanmail the contents of mailboxes only
// their owner may read: they are 640, owned like upload/ (OCMP's), in a
// temporary directory that is 700 (also when an older omail made it
// 755), and an upload/ omail-pack makes is 750, owned like ocmpdir.
// Whatever the umask.
func TestBundleModes(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	p, h := setup(t)
	base := filepath.Join(h, "ocmp")
	os.MkdirAll(filepath.Join(base, "k2", "mail", "upload"), 0o755)
	os.MkdirAll(filepath.Join(base, "k2", "mail", ".omail-tmp"), 0o755)
	uid, gid := os.Getuid(), os.Getgid()
	if uid == 0 {
		// As root: OCMP is another user.
		uid, gid = 4321, 4322
		for _, d := range []string{base, filepath.Join(base, "k2", "mail", "upload")} {
			if err := os.Chown(d, uid, gid); err != nil {
				t.Fatal(err)
			}
		}
	}
	putEntry(t, h, "k1", "1700000000.1.1.1", "Subject: 1\n", "r@x")
	putEntry(t, h, "k2", "1700000000.2.1.1", "Subject: 2\n", "r@x")
	if err := p.Pass(); err != nil {
		t.Fatal(err)
	}
	mode := func(path string, want os.FileMode, owned bool) {
		t.Helper()
		fi, err := os.Lstat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), want)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if owned && (int(st.Uid) != uid || int(st.Gid) != gid) {
			t.Errorf("%s: owned by %d:%d, want %d:%d", path, st.Uid, st.Gid, uid, gid)
		}
	}
	for _, ep := range []string{"k1", "k2"} {
		files, _ := filepath.Glob(filepath.Join(base, ep, "mail", "upload", "*"))
		if len(files) != 1 {
			t.Fatalf("%s: %d bundles", ep, len(files))
		}
		mode(files[0], 0o640, true)
		mode(filepath.Join(base, ep, "mail", ".omail-tmp"), 0o700, false)
	}
	for _, d := range []string{"k1", "k1/mail", "k1/mail/upload"} {
		mode(filepath.Join(base, d), 0o750, true)
	}
}

// A user who owns an endpoint's directory must not point root's pass
// elsewhere with a symbolic link at mail/ or upload/: the pass refuses
// it, writes nothing there, and the mail stays in the outbox. A link
// root (or we) made is followed.
func TestSymlinkInOCMPTree(t *testing.T) {
	for _, at := range []string{"k", "k/mail", "k/mail/upload"} {
		t.Run(at, func(t *testing.T) {
			p, h := setup(t)
			base := filepath.Join(h, "ocmp")
			elsewhere := filepath.Join(h, "elsewhere")
			os.MkdirAll(filepath.Join(elsewhere, "mail", "upload"), 0o755)
			// elsewhere stands for what the link's target is: an
			// endpoint tree for k, its mail/ for k/mail, an upload/ for
			// k/mail/upload.
			target := elsewhere
			switch at {
			case "k/mail":
				target = filepath.Join(elsewhere, "mail")
			case "k/mail/upload":
				target = filepath.Join(elsewhere, "mail", "upload")
			}
			link := filepath.Join(base, at)
			os.MkdirAll(filepath.Dir(link), 0o755)
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			// The link is a user's: as root, give it to another uid; as
			// anyone else, make the pass take itself for another uid.
			if os.Geteuid() == 0 {
				if err := os.Lchown(link, 4321, 4321); err != nil {
					t.Fatal(err)
				}
			} else {
				old := euid
				euid = func() int { return os.Geteuid() + 1 }
				defer func() { euid = old }()
			}
			putEntry(t, h, "k", "1700000000.1.1.1", "Subject: 1\n", "r@x")
			err := p.Pass()
			if err == nil {
				t.Fatal("pass followed a user's symbolic link")
			}
			var found []string
			filepath.Walk(elsewhere, func(path string, fi os.FileInfo, err error) error {
				if err == nil && path != elsewhere && !strings.HasSuffix(path, "/mail") && !strings.HasSuffix(path, "/upload") {
					found = append(found, path)
				}
				return nil
			})
			if len(found) > 0 {
				t.Errorf("written through the link: %v", found)
			}
			if n := len(readDirNames(t, outbox.Path(h, "k"))); n != 1 {
				t.Errorf("outbox holds %d entries, want the 1 still there", n)
			}

			// The same link as root's (or our own): followed.
			if os.Geteuid() == 0 {
				if err := os.Lchown(link, 0, 0); err != nil {
					t.Fatal(err)
				}
			} else {
				euid = os.Geteuid
			}
			if err := p.Pass(); err != nil {
				t.Fatalf("pass with a trusted link: %v", err)
			}
			if files, _ := filepath.Glob(filepath.Join(elsewhere, "mail", "upload", "omail-*")); len(files) != 1 {
				t.Errorf("bundles through the trusted link: %v", files)
			}
		})
	}
}

// readDirNames lists dir's entries that are not dot files.
func readDirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	return names
}
