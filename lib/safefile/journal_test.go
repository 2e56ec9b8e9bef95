package safefile

import (
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// fakeKernel points journaled at a /sys/dev/block that names device
// 254:1 "vda1", and a /proc/fs/jbd2 holding the given journals.
func fakeKernel(t *testing.T, journals ...string) {
	t.Helper()
	root := t.TempDir()
	sys := filepath.Join(root, "sys")
	jbd2 := filepath.Join(root, "jbd2")
	for _, d := range []string{sys, jbd2} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../../devices/pci0000:00/virtio1/block/vda/vda1", filepath.Join(sys, "254:1")); err != nil {
		t.Fatal(err)
	}
	for _, j := range journals {
		if err := os.Mkdir(filepath.Join(jbd2, j), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	oldSys, oldExt4, oldProc := sysDevBlock, sysExt4, procJBD2
	sysDevBlock, sysExt4, procJBD2 = sys, filepath.Join(root, "ext4"), jbd2
	t.Cleanup(func() { sysDevBlock, sysExt4, procJBD2 = oldSys, oldExt4, oldProc })
}

// ext4Task gives the fake kernel's vda1 a /sys/fs/ext4/vda1/journal_task.
func ext4Task(t *testing.T, task string) {
	t.Helper()
	d := filepath.Join(sysExt4, "vda1")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "journal_task"), []byte(task), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestJournaled(t *testing.T) {
	dev := unix.Mkdev(254, 1)
	for _, tc := range []struct {
		journals []string
		want     bool
	}{
		{[]string{"vda1-8"}, true},
		{[]string{"vdb-8", "vda1-8"}, true},
		{nil, false},
		{[]string{"vda-8"}, false},   // the whole disk's, not this partition's
		{[]string{"vda1-x"}, false},  // not NAME-INODE
		{[]string{"vda10-8"}, false}, // another partition
	} {
		fakeKernel(t, tc.journals...)
		if got := journaled(dev); got != tc.want {
			t.Errorf("journals %v: journaled %v, want %v", tc.journals, got, tc.want)
		}
	}
	// ext4's own word, where the kernel gives it, whatever jbd2 lists: a
	// journal on another device is listed under that device's name.
	fakeKernel(t)
	ext4Task(t, "17409\n")
	if !journaled(dev) {
		t.Error("journal_task names a thread, and the device is taken for unjournaled")
	}
	fakeKernel(t, "vda1-8")
	ext4Task(t, "<none>\n")
	if journaled(dev) {
		t.Error("journal_task says <none>, and the device is taken for journaled")
	}
	// A device /sys does not name, or no /proc/fs/jbd2: the safe answer.
	fakeKernel(t, "vda1-8")
	if journaled(unix.Mkdev(254, 2)) {
		t.Error("a device without a name is taken for journaled")
	}
	procJBD2 = filepath.Join(t.TempDir(), "missing")
	if journaled(dev) {
		t.Error("no /proc/fs/jbd2, and the device is taken for journaled")
	}
}

// markFS makes needsSyncfs answer yes (or no) for dir's file system, as
// it would on ext4 without (or with) a journal.
func markFS(t *testing.T, dir string, yes bool) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	dev := uint64(st.Dev)
	old, had := fsKinds.Load(dev)
	fsKinds.Store(dev, yes)
	t.Cleanup(func() {
		if had {
			fsKinds.Store(dev, old)
		} else {
			fsKinds.Delete(dev)
		}
	})
}

func countSyncfs(t *testing.T) *atomic.Int32 {
	var n atomic.Int32
	old := syncfsOf
	syncfsOf = func(dir, key string) error { n.Add(1); return syncFS(dir, key) }
	t.Cleanup(func() { syncfsOf = old })
	return &n
}

func TestSyncDirUsesSyncfsWithoutAJournal(t *testing.T) {
	root := t.TempDir()
	a, b := filepath.Join(root, "a"), filepath.Join(root, "b")
	for _, d := range []string{a, b} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	n := countSyncfs(t)
	markFS(t, root, true)
	for _, d := range []string{a, b} {
		if err := SyncDir(d); err != nil {
			t.Fatal(err)
		}
	}
	if n.Load() != 2 {
		t.Errorf("%d syncfs for two SyncDir calls on a file system without a journal", n.Load())
	}
	// One file system, one group commit: the key names the device, not
	// the directory.
	ka, _ := needsSyncfs(a)
	kb, _ := needsSyncfs(b)
	if ka != kb || ka == a {
		t.Errorf("group commit keys %q and %q", ka, kb)
	}
	// Removals and second names of durable files: a directory fsync is
	// enough everywhere.
	f := filepath.Join(a, "f")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := SyncDirEntries(a); err != nil {
		t.Fatal(err)
	}
	if err := Remove(f); err != nil {
		t.Fatal(err)
	}
	if n.Load() != 2 {
		t.Errorf("SyncDirEntries or Remove ran syncfs (%d in all)", n.Load())
	}
	markFS(t, root, false)
	if err := SyncDir(a); err != nil {
		t.Fatal(err)
	}
	if n.Load() != 2 {
		t.Error("syncfs on a file system whose fsync is enough")
	}
	if err := SyncDir(filepath.Join(root, "missing")); err == nil {
		t.Error("SyncDir of a missing directory succeeded")
	}
}

// TestSyncfsOfARemovedDirectory: the shared syncfs runs with the first
// caller's directory; when that one is gone, the file system is still
// there, and the callers behind it must not be refused for it.
func TestSyncfsOfARemovedDirectory(t *testing.T) {
	root := t.TempDir()
	gone := filepath.Join(root, "user", "Maildir", "new")
	key, _ := needsSyncfs(root)
	if err := syncFS(gone, key); err != nil {
		t.Fatalf("syncfs with the first caller's directory removed: %v", err)
	}
	if err := syncFS(gone, fsKey(^uint64(0))); err == nil {
		t.Error("a parent on another file system was taken")
	}
}

func TestNeedsSyncfsNotExt(t *testing.T) {
	// /proc is never ext4: no syncfs, whatever the journals say.
	if _, yes := needsSyncfs("/proc/self"); yes {
		t.Error("procfs taken for an ext4 without a journal")
	}
}

// SyncDirOf keeps SyncDir's rule: syncfs where a directory's fsync does
// not make a new name durable, the directory's fsync elsewhere.
func TestSyncDirOfUsesSyncfsWithoutAJournal(t *testing.T) {
	dir := t.TempDir()
	var n atomic.Int32
	old := syncfsFile
	syncfsFile = func(d *os.File) error { n.Add(1); return old(d) }
	t.Cleanup(func() { syncfsFile = old })
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	markFS(t, dir, true)
	if err := SyncDirOf(d); err != nil {
		t.Fatal(err)
	}
	if n.Load() != 1 {
		t.Errorf("%d syncfs for SyncDirOf on a file system without a journal, want 1", n.Load())
	}
	markFS(t, dir, false)
	if err := SyncDirOf(d); err != nil {
		t.Fatal(err)
	}
	if n.Load() != 1 {
		t.Error("syncfs on a file system whose fsync is enough")
	}
	d.Close()
	if err := SyncDirOf(d); err == nil {
		t.Error("SyncDirOf of a closed directory succeeded")
	}
}
