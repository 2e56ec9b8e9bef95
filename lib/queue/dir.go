package queue

import (
	"errors"
	"io/fs"
	"runtime"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Listing and reading a big queue. mailq lists every message and
// omail-deliver reads every state file when it starts, so with 100,000
// messages the cost per message is what counts: directories are read with
// getdents in large batches, without sorting by name or a stat per entry
// (os.ReadDir does both, 8 KiB at a time), and state files are read
// relative to an open directory through one reused buffer: an open, a
// read and a close, where os.ReadFile spends about twice as many system
// calls (fstat, fcntl, poller registration, the read that finds EOF).

// dirBufSize is the getdents buffer: some 5,000 queue ids per call.
const dirBufSize = 256 << 10

// IDs returns the message ids in one queue subdirectory (DirTodo or
// DirInfo), in arrival order. Names that are not ids are left out.
func (q *Queue) IDs(sub string) ([]string, error) {
	ids, err := q.ids(sub)
	if err != nil {
		return nil, err
	}
	SortIDs(ids)
	return ids, nil
}

// AllIDs returns the messages in todo/ and info/, in arrival order, each
// once.
func (q *Queue) AllIDs() ([]string, error) {
	locs, err := q.locate()
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(locs))
	for i, l := range locs {
		ids[i] = l.id
	}
	return ids, nil
}

// Names returns every name in a queue subdirectory, unsorted.
func (q *Queue) Names(sub string) ([]string, error) { return readNames(q.Path(sub, "")) }

// ids is IDs unsorted.
func (q *Queue) ids(sub string) ([]string, error) {
	names, err := readNames(q.Path(sub, ""))
	if err != nil {
		return nil, err
	}
	ids := names[:0]
	for _, n := range names {
		if ValidID(n) {
			ids = append(ids, n)
		}
	}
	return ids, nil
}

// readNames lists a directory, "." and ".." excepted, in the order the
// file system keeps it.
func readNames(dir string) ([]string, error) {
	fd, err := openRetry(unix.AT_FDCWD, dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	buf := make([]byte, dirBufSize)
	var names []string
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "getdents", Path: dir, Err: err}
		}
		if n <= 0 {
			return names, nil
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
}

func openRetry(dirfd int, name string, flags int) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, flags, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// SortIDs sorts ids in arrival order (IDLess).
func SortIDs(ids []string) { slices.SortFunc(ids, compareIDs) }

// IDLess orders ids numerically field by field, so arrival order holds
// across a change in the number of digits.
func IDLess(a, b string) bool { return compareIDs(a, b) < 0 }

// compareIDs compares field by field without allocating (a sort of
// 100,000 ids makes some 2 million comparisons); with fewer fields first.
func compareIDs(a, b string) int {
	moreA, moreB := true, true
	for moreA && moreB {
		var fa, fb string
		fa, a, moreA = strings.Cut(a, ".")
		fb, b, moreB = strings.Cut(b, ".")
		if c := compareField(fa, fb); c != 0 {
			return c
		}
	}
	switch {
	case !moreA && moreB:
		return -1
	case moreA && !moreB:
		return 1
	}
	return 0
}

// compareField compares two fields as numbers when both are digits (of
// any length: leading zeros do not count), else as strings.
func compareField(a, b string) int {
	if !digits(a) || !digits(b) {
		return strings.Compare(a, b)
	}
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Reader reads queue files relative to open directories, through one
// buffer it reuses. It is for one goroutine; Close it when done.
type Reader struct {
	q   *Queue
	fds map[string]int
	buf []byte
	// atime is set once opening with O_NOATIME was refused: only the
	// files' owner (or root) may, and mailq may run as anyone.
	atime bool
}

// NewReader returns a Reader of the queue's files.
func (q *Queue) NewReader() *Reader {
	return &Reader{q: q, fds: map[string]int{}, buf: make([]byte, 4096)}
}

// Close closes the directories the Reader opened.
func (r *Reader) Close() {
	for _, fd := range r.fds {
		unix.Close(fd)
	}
	clear(r.fds)
}

func (r *Reader) dir(sub string) (int, error) {
	if fd, ok := r.fds[sub]; ok {
		return fd, nil
	}
	fd, err := openRetry(unix.AT_FDCWD, r.q.Path(sub, ""), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if err != nil {
		return -1, &fs.PathError{Op: "open", Path: r.q.Path(sub, ""), Err: err}
	}
	r.fds[sub] = fd
	return fd, nil
}

// ReadState returns the content of the state file sub/id. The bytes are
// the Reader's own: valid until its next ReadState. A missing file is an
// error for which errors.Is(err, fs.ErrNotExist) holds.
func (r *Reader) ReadState(sub, id string) ([]byte, error) {
	data, _, err := r.ReadEntry(sub, id)
	return data, err
}

// ReadEntry is ReadState that also returns, for a single-file entry in
// todo/ (todofile.go), the length of the message before its state; -1
// for any other state file.
func (r *Reader) ReadEntry(sub, id string) ([]byte, int64, error) {
	dfd, err := r.dir(sub)
	if err != nil {
		return nil, -1, err
	}
	// O_NOATIME: reading a state file the first time after it was
	// written would otherwise update its atime (relatime), a metadata
	// write per file in a scan of the whole queue.
	flags := unix.O_RDONLY | unix.O_CLOEXEC
	if !r.atime {
		flags |= unix.O_NOATIME
	}
	fd, err := openRetry(dfd, id, flags)
	if err == unix.EPERM && !r.atime {
		r.atime = true
		fd, err = openRetry(dfd, id, unix.O_RDONLY|unix.O_CLOEXEC)
	}
	if err != nil {
		return nil, -1, &fs.PathError{Op: "open", Path: r.q.Path(sub, id), Err: err}
	}
	defer unix.Close(fd)
	if sub == DirTodo {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return nil, -1, &fs.PathError{Op: "stat", Path: r.q.Path(sub, id), Err: err}
		}
		state, msgLen, err := readTodo(fd, st.Size, r.buf)
		if err != nil {
			return nil, -1, &fs.PathError{Op: "read", Path: r.q.Path(sub, id), Err: err}
		}
		if msgLen >= 0 {
			r.buf = state[:0]
			return state, msgLen, nil
		}
	}
	data, err := r.readAll(fd, sub, id)
	return data, -1, err
}

// readAll reads a state file to its end into the Reader's buffer.
func (r *Reader) readAll(fd int, sub, id string) ([]byte, error) {
	data := r.buf[:0]
	for {
		if len(data) == cap(data) {
			data = slices.Grow(data, cap(data))
		}
		want := cap(data) - len(data)
		n, err := unix.Read(fd, data[len(data):cap(data)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: r.q.Path(sub, id), Err: err}
		}
		data = data[:len(data)+n]
		// A state file is never rewritten in place (a new one is renamed
		// over it), so a short read is its end, and a file that ends with
		// the end record needs no second read to find EOF. Anything else
		// is read to EOF, and ParseState judges it.
		if n == 0 || n < want && ended(data) {
			break
		}
	}
	r.buf = data[:0]
	return data, nil
}

// ended reports whether a state file's bytes end with the end record.
func ended(data []byte) bool {
	return len(data) >= 3 && string(data[len(data)-3:]) == "\x00.\x00"
}

// Size returns the size of the message file mess/id.
func (r *Reader) Size(id string) (int64, error) {
	dfd, err := r.dir(DirMess)
	if err != nil {
		return 0, err
	}
	var st unix.Stat_t
	for {
		err = unix.Fstatat(dfd, id, &st, 0)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return 0, &fs.PathError{Op: "stat", Path: r.q.Path(DirMess, id), Err: err}
	}
	return st.Size, nil
}

// located is a message and the directory its state is read from.
type located struct{ id, dir string }

// locate lists todo/ and info/ as one list in arrival order; a message in
// both (a crash came between writing info/ and removing todo/) is read
// from info/, the newer.
func (q *Queue) locate() ([]located, error) {
	info, err := q.IDs(DirInfo)
	if err != nil {
		return nil, err
	}
	todo, err := q.IDs(DirTodo)
	if err != nil {
		return nil, err
	}
	out := make([]located, 0, len(info)+len(todo))
	i, j := 0, 0
	for i < len(info) || j < len(todo) {
		c := -1
		if i == len(info) {
			c = 1
		} else if j < len(todo) {
			c = compareIDs(info[i], todo[j])
		}
		switch {
		case c < 0:
			out = append(out, located{info[i], DirInfo})
			i++
		case c > 0:
			out = append(out, located{todo[j], DirTodo})
			j++
		default:
			out = append(out, located{info[i], DirInfo})
			i++
			j++
		}
	}
	return out, nil
}

// each calls fn for every message in todo/ and info/, in arrival order.
// A few goroutines read and parse ahead; fn runs on the caller's.
func (q *Queue) each(fn func(Entry)) error {
	locs, err := q.locate()
	if err != nil {
		return err
	}
	read := func(r *Reader, i int) (e Entry) {
		l := locs[i]
		e = Entry{ID: l.id, Dir: l.dir, Size: -1}
		data, msgLen, err := r.ReadEntry(l.dir, l.id)
		if errors.Is(err, fs.ErrNotExist) && l.dir == DirTodo {
			// A deliverer took it since the listing: its state is in
			// info/ now, unless it is finished.
			e.Dir = DirInfo
			data, err = r.ReadState(DirInfo, l.id)
		}
		if errors.Is(err, fs.ErrNotExist) {
			e.Dir = "" // finished while we looked
			return e
		}
		if err == nil {
			e.State, err = ParseState(l.id, data)
		}
		e.Err = err
		if msgLen >= 0 {
			e.Size = msgLen // a single-file entry: no mess/ID yet
		} else if n, err := r.Size(l.id); err == nil {
			e.Size = n
		}
		if e.State != nil && e.State.MessageLen > 0 {
			e.Size = e.State.MessageLen // mess/ID may still carry its envelope
		}
		return e
	}
	ReadAhead(q, runtime.GOMAXPROCS(0), len(locs), read, func(i int, e Entry) bool {
		if e.Dir != "" {
			fn(e)
		}
		return true
	})
	return nil
}

// readChunk is how many files one goroutine of ReadAhead reads in a row.
const readChunk = 256

// ReadAhead calls work(r, i) for i from 0 to n-1 on up to workers
// goroutines, each with its own Reader, and use(i, v) with the results
// in order on the caller's goroutine, until use returns false. At most a
// few chunks of results wait for use. It returns when every goroutine it
// started has finished.
func ReadAhead[T any](q *Queue, workers, n int, work func(r *Reader, i int) T, use func(i int, v T) bool) {
	workers = max(1, min(workers, 4, (n+readChunk-1)/readChunk))
	if workers == 1 {
		r := q.NewReader()
		defer r.Close()
		for i := 0; i < n; i++ {
			if !use(i, work(r, i)) {
				return
			}
		}
		return
	}
	type chunk struct {
		lo  int
		out chan []T
	}
	todo := make(chan chunk, workers)
	order := make(chan chunk, 2*workers)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := q.NewReader()
			defer r.Close()
			for c := range todo {
				hi := min(c.lo+readChunk, n)
				vs := make([]T, 0, hi-c.lo)
				for i := c.lo; i < hi; i++ {
					vs = append(vs, work(r, i))
				}
				c.out <- vs // buffered: never waits
			}
		}()
	}
	go func() {
		defer close(todo)
		defer close(order)
		for lo := 0; lo < n; lo += readChunk {
			c := chunk{lo, make(chan []T, 1)}
			select {
			case order <- c:
			case <-stop:
				return
			}
			todo <- c // the workers never wait for the caller: this moves
		}
	}()
	defer func() {
		close(stop)
		for range order {
		}
		wg.Wait()
	}()
	for c := range order {
		for k, v := range <-c.out {
			if !use(c.lo+k, v) {
				return
			}
		}
	}
}
