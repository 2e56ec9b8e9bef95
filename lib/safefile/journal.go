package safefile

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// File systems where fsync does not make a new name durable.
//
// On ext2, and on ext3 or ext4 without a journal, fsync of a new file
// writes its data and its inode, and fsync of its directory writes the
// directory's blocks, but neither writes the inode bitmap or the block
// group's descriptor: those are written back later (up to
// dirty_expire_centisecs, 30 s by default). After a power cut in between,
// a directory entry names an inode the group says was never used (ext4's
// uninit_bg and metadata_csum keep a high-water mark of used inodes per
// group): a message answered 250, or a mailbox file reported delivered,
// is kept only if e2fsck -p repairs the group at boot; e2fsck -n clears
// the entry, and unchecked, the kernel takes the inode for free.
// test/queue-nojournal shows it with e2fsck on a copy of the disk taken
// right after omail-queue exits.
//
// syncfs(2) writes all of the file system's dirty metadata, the bitmaps
// and descriptors included, so on such a file system SyncDir runs
// syncfs instead of the directory's fsync (it covers the directory too),
// and its group commit is kept per file system instead of per
// directory: one syncfs makes durable every entry made before it
// started, in any directory. It costs more than a directory fsync (it
// also writes the data other writers left dirty); the remedy an
// operator has is a journal (tune2fs -O has_journal), where fsync keeps
// its promise and omail goes back to directory fsyncs.

const ext4Magic = 0xEF53 // ext2, ext3 and ext4 share it

// Where the kernel shows block devices, its ext4 file systems and the
// journals it runs; tests point them elsewhere.
var (
	sysDevBlock = "/sys/dev/block"
	sysExt4     = "/sys/fs/ext4"
	procJBD2    = "/proc/fs/jbd2"
)

// fsKinds caches, per device number, whether its file system needs
// syncfs: a file system does not gain or lose a journal while mounted.
var fsKinds sync.Map // uint64 -> bool

// SyncsWholeFS reports whether SyncDir runs syncfs for dir: what
// omail-deliver warns of when it starts.
func SyncsWholeFS(dir string) bool {
	_, yes := needsSyncfs(dir)
	return yes
}

// needsSyncfs reports whether entries made in dir become durable only by
// syncfs, and a key naming dir's file system for the group commit. When
// dir cannot be looked at, the caller's directory fsync reports why.
func needsSyncfs(dir string) (key string, yes bool) {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return "", false
	}
	return fsKind(uint64(st.Dev), func(fs *unix.Statfs_t) error { return unix.Statfs(dir, fs) })
}

// fsKind is needsSyncfs for the file system on device dev, which statfs
// describes.
func fsKind(dev uint64, statfs func(*unix.Statfs_t) error) (key string, yes bool) {
	key = fsKey(dev)
	if v, ok := fsKinds.Load(dev); ok {
		return key, v.(bool)
	}
	var fs unix.Statfs_t
	if err := statfs(&fs); err != nil {
		return "", false
	}
	yes = fs.Type == ext4Magic && !journaled(dev)
	fsKinds.Store(dev, yes)
	return key, yes
}

// fsKey names a file system's group commit: never a path.
func fsKey(dev uint64) string { return "\x00fs:" + strconv.FormatUint(dev, 10) }

// journaled reports whether the kernel runs a journal (jbd2) for the
// file system on block device dev, NAME under /sys/dev/block: ext4's
// /sys/fs/ext4/NAME/journal_task names the journal's thread, or says
// "<none>" (it covers a journal on another device too); kernels without
// that file list an internal journal in /proc/fs/jbd2 as NAME-INODE.
// When it cannot be told (no /proc or /sys, a device without a name),
// the answer is no: the safe side, which costs speed, not mail.
func journaled(dev uint64) bool {
	link, err := os.Readlink(filepath.Join(sysDevBlock, strconv.FormatUint(uint64(unix.Major(dev)), 10)+":"+strconv.FormatUint(uint64(unix.Minor(dev)), 10)))
	if err != nil {
		return false
	}
	name := filepath.Base(link)
	if task, err := os.ReadFile(filepath.Join(sysExt4, name, "journal_task")); err == nil {
		t := strings.TrimSpace(string(task))
		return t != "" && t != "<none>"
	}
	entries, err := os.ReadDir(procJBD2)
	if err != nil {
		return false
	}
	for _, e := range entries {
		n, inode, ok := cutLast(e.Name(), "-")
		if ok && n == name && digits(inode) {
			return true
		}
	}
	return false
}

func cutLast(s, sep string) (before, after string, ok bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// syncfsOf is syncFS; tests count its calls.
var syncfsOf = syncFS

// syncFS is one syncfs of the file system holding dir. Its callers share
// it (SyncDir's group commit per file system), and dir is only the first
// caller's: when that directory is gone by now (a removed Maildir), a
// parent on the same file system serves, so that the others are not
// refused for it.
func syncFS(dir, key string) error {
	d, err := os.Open(dir)
	if err != nil {
		d = openParentOnSameFS(dir, key)
		if d == nil {
			return err
		}
	}
	defer d.Close()
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		return &os.PathError{Op: "syncfs", Path: dir, Err: err}
	}
	return nil
}

// openParentOnSameFS opens the nearest existing parent of dir on the
// file system key names (fsKey), or returns nil.
func openParentOnSameFS(dir, key string) *os.File {
	for p := filepath.Dir(filepath.Clean(dir)); ; p = filepath.Dir(p) {
		var st unix.Stat_t
		if unix.Stat(p, &st) == nil {
			if fsKey(uint64(st.Dev)) != key {
				return nil
			}
			if d, err := os.Open(p); err == nil {
				return d
			}
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}
