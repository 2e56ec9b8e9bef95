package bundle

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"omail/lib/dict"
)

// ErrNoZstd is a system where the zstd program cannot be used: none in
// PATH, one older than MinZstd, or (for a dictionary) no /proc to hand
// it the dictionary through. bundlecompression best then fails (a
// temporary failure: install it, or choose zstd); zstd falls back to
// the Go encoder. The error says which, wrapping ErrNoZstd.
var ErrNoZstd = errors.New("no usable zstd program")

// MinZstd is the oldest zstd program omail runs: --size-hint came in
// 1.4.4 (Debian since bullseye).
var MinZstd = [3]int{1, 4, 4}

// zstdVersions caches what `zstd -V` said, per program file (its path,
// size and time: an upgrade is a new file): one run per program per
// process. A run that said no version is not kept, but tried again.
var zstdVersions sync.Map // key -> error (nil: usable)

// findZstd is the zstd program to run, or why there is none.
func findZstd(o Options) (string, error) {
	path, err := exec.LookPath("zstd")
	if err != nil {
		return "", fmt.Errorf("%w: none in PATH (Debian package zstd)", ErrNoZstd)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoZstd, err)
	}
	key := fmt.Sprintf("%s\x00%d\x00%d", path, fi.Size(), fi.ModTime().UnixNano())
	v, ok := zstdVersions.Load(key)
	if !ok {
		said, err := checkVersion(path)
		if v = err; said {
			zstdVersions.Store(key, v)
		}
	}
	if err, _ := v.(error); err != nil {
		return "", err
	}
	if o.Dict != 0 {
		if _, err := os.Stat("/proc/self/fd"); err != nil {
			return "", fmt.Errorf("%w: %s would read the dictionary as /dev/fd/3, and there is no /proc", ErrNoZstd, path)
		}
	}
	return path, nil
}

var versionRE = regexp.MustCompile(`v(\d+)\.(\d+)\.(\d+)`)

// checkVersion runs `path -V`: nil when the program is MinZstd or newer;
// said reports whether it said a version at all.
func checkVersion(path string) (said bool, err error) {
	out, err := exec.Command(path, "-V").Output()
	m := versionRE.FindSubmatch(out)
	if err != nil || m == nil {
		return false, fmt.Errorf("%w: %s -V does not say its version (%v)", ErrNoZstd, path, err)
	}
	var have [3]int
	for i := range have {
		have[i], _ = strconv.Atoi(string(m[i+1]))
	}
	if slices.Compare(have[:], MinZstd[:]) < 0 {
		return true, fmt.Errorf("%w: %s is %s, older than %d.%d.%d", ErrNoZstd, path, m[0], MinZstd[0], MinZstd[1], MinZstd[2])
	}
	return true, nil
}

// ZstdArgs is how Zstd runs the zstd program: libzstd's level 12 with
// the 8 MiB window (wlog 23; the level's own is 4 MiB, and the readers'
// MaxWindow takes 8 whatever the input), its content checksum, one
// thread (the machine runs other things). On real mail it writes about
// 1% fewer bytes than the strongest level of the Go encoder, in less
// CPU (docs/BENCHMARKS.md, issue 16); level 13 is four times slower.
var ZstdArgs = []string{"-12", "--zstd=wlog=23", "--check", "-T1", "-q", "-c", "--no-progress"}

// BestArgs is how Best runs it: level 19 finds about 7% fewer bytes
// than the Go encoder's strongest level, with the same window, the
// target length of level 22 (tlen 999: a little fewer bytes at the same
// memory, about 90 MB), at a tenth of the speed.
var BestArgs = []string{"-19", "--zstd=wlog=23,tlen=999", "--check", "-T1", "-q", "-c", "--no-progress"}

// zstdCmd is a running zstd program compressing what is written to it
// into the bundle's raw writer. Memory is the program's: it streams.
type zstdCmd struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *errWriter
	stderr *capped
	dict   *os.File // the dictionary, in a file already removed
	ended  bool
	err    error // why it ended badly, once it has ended
}

// errWriter keeps the first error of the writer the program's output
// is copied to (a full disk): the program itself then only sees a
// broken pipe. Written by exec's copying goroutine, read after Wait.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	n, err := e.w.Write(p)
	if err != nil && e.err == nil {
		e.err = err
	}
	return n, err
}

// startZstd starts the zstd program writing to out with args (ZstdArgs
// or BestArgs), o's dictionary and size hint.
func startZstd(out io.Writer, args []string, o Options) (*zstdCmd, error) {
	path, err := findZstd(o)
	if err != nil {
		return nil, err
	}
	c := &zstdCmd{stderr: &capped{max: 4096}}
	c.cmd = exec.Command(path)
	if o.SizeHint > 0 {
		args = append([]string{"--size-hint=" + strconv.FormatInt(o.SizeHint, 10)}, args...)
	}
	if id := o.Dict; id != 0 {
		// The program reads a dictionary from a file it can size, not
		// from a pipe: a temporary file, removed at once (nothing is
		// left behind, even by a crash), that it opens as /dev/fd/3.
		d, ok := dict.Get(id)
		if !ok {
			return nil, fmt.Errorf("bundle: no dictionary %d in this omail", id)
		}
		if c.dict, err = unlinkedFile(d); err != nil {
			return nil, fmt.Errorf("bundle: a temporary file for the dictionary: %v", err)
		}
		c.cmd.ExtraFiles = []*os.File{c.dict}
		args = append([]string{"-D", "/dev/fd/3"}, args...)
	}
	c.cmd.Args = append(c.cmd.Args, args...)
	c.out = &errWriter{w: out}
	c.cmd.Stdout = c.out
	c.cmd.Stderr = c.stderr
	// A process group of its own: a signal to omail-pack's group (Ctrl-C
	// at a terminal, SIGALRM for "a pass now") is for omail-pack, which
	// handles it; the default action would kill the program half-way
	// through a bundle. It still ends with its input, when we do.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if c.in, err = c.cmd.StdinPipe(); err == nil {
		err = c.cmd.Start()
	}
	if err != nil {
		c.closeDict()
		return nil, fmt.Errorf("bundle: starting %s: %v", path, err)
	}
	return c, nil
}

// unlinkedFile is an open file holding b, with no name.
func unlinkedFile(b []byte) (*os.File, error) {
	f, err := os.CreateTemp("", "omail-dict-")
	if err != nil {
		return nil, err
	}
	os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return nil, err
	}
	// From its start, wherever /dev/fd shares the file's offset.
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// capped keeps the first max bytes written to it: the program's
// complaint, for the log, however much it writes.
type capped struct {
	b   bytes.Buffer
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.b.Len(); room > 0 {
		c.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (c *zstdCmd) Write(b []byte) (int, error) {
	if c.ended {
		return 0, c.Close()
	}
	n, err := c.in.Write(b)
	if err != nil {
		// It stopped reading: its exit status and complaint, or the
		// output's error, say why.
		if cerr := c.Close(); cerr != nil {
			err = cerr
		} else {
			err = fmt.Errorf("bundle: writing to the zstd program: %v", err)
			c.err = err
		}
	}
	return n, err
}

// Close ends the input and waits for the program to write the last of
// the stream: nil only when it exited 0 and all it wrote was written.
// Called again, it says again why it ended.
func (c *zstdCmd) Close() error {
	if c.ended {
		if c.err != nil {
			return c.err
		}
		return errors.New("bundle: zstd program already ended")
	}
	c.ended = true
	defer c.closeDict()
	c.in.Close()
	werr := c.cmd.Wait()
	switch {
	case c.out.err != nil:
		c.err = fmt.Errorf("bundle: writing the zstd program's output: %w", c.out.err)
	case werr != nil:
		c.err = fmt.Errorf("bundle: the zstd program: %v: %s", werr, strings.TrimSpace(c.stderr.b.String()))
	}
	return c.err
}

// abort stops the program, for a bundle given up.
func (c *zstdCmd) abort() {
	if c.ended {
		return
	}
	c.ended = true
	c.cmd.Process.Kill()
	c.in.Close()
	c.cmd.Wait()
	c.closeDict()
}

func (c *zstdCmd) closeDict() {
	if c.dict != nil {
		c.dict.Close()
		c.dict = nil
	}
}
