package control

import (
	"errors"
	"io/fs"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Reading a control file at every use, as qmail does per connection and
// per delivery, costs an open, a read and a close each time, and the
// long-lived processes (the resident omail-smtpd, omail-deliver and its
// resident delivery children) read the same few files for every message.
// A Dir made by New keeps the lines of each file it read and uses them
// again while a stat shows the same file: the same device and inode, size,
// modification and change times. A hand edit, a rename into place, a
// chmod change one of those, so the next use reads the file again, as
// before, without a signal.
//
// An edit that changes none of them (the same size, within one tick of
// the file system's clock, which is a few milliseconds) would go unseen.
// So a file changed less than settle before it was read is not kept, the
// rule git uses for its index: it is read again at each use until it has
// been left alone for that long.
const settle = time.Second

// fileCache is the lines of the control files of one Dir, by path.
type fileCache struct {
	mu sync.Mutex
	m  map[string]cachedFile
	// reads counts the files read, for the tests.
	reads int
}

type cachedFile struct {
	id    fileID
	lines []string
}

// fileID is what a stat says of a file that an edit changes.
type fileID struct {
	dev, ino     uint64
	size         int64
	mtime, ctime int64 // ns
}

func statID(path string) (fileID, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return fileID{}, err
	}
	return fileID{dev: uint64(st.Dev), ino: st.Ino, size: st.Size, mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano()}, nil
}

// lines is Dir.lines through the cache: the lines kept for path when a
// stat shows the same file, else read (readLines) and kept when the file
// has settled. Callers never change the slice returned.
func (c *fileCache) lines(path, name string) ([]string, bool, error) {
	id, err := statID(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil // as an open would say: missing
	}
	if err != nil {
		// Not reachable: reading it gives the error.
		return c.read(path, name)
	}
	c.mu.Lock()
	e, ok := c.m[path]
	c.mu.Unlock()
	if ok && e.id == id {
		return e.lines, true, nil
	}
	start := time.Now().UnixNano()
	lines, exists, err := c.read(path, name)
	if err != nil || !exists || start-max(id.mtime, id.ctime) < int64(settle) {
		return lines, exists, err
	}
	// The file may have changed between the stat and the read: then the
	// next stat differs from id, and it is read again.
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]cachedFile{}
	}
	c.m[path] = cachedFile{id: id, lines: lines}
	c.mu.Unlock()
	return lines, exists, err
}

func (c *fileCache) read(path, name string) ([]string, bool, error) {
	c.mu.Lock()
	c.reads++
	c.mu.Unlock()
	return readLines(path, name)
}
