package delivercmd

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"omail/lib/aliases"
	"omail/lib/control"
	"omail/lib/local"
	"omail/lib/qexit"
	"omail/lib/safefile"
)

// runNewaliases is omail-deliver -newaliases (and omail-deliver run as
// newaliases, as sendmail): control/aliases compiled into
// control/aliases.cdb, the format lib/aliases reads (key: the name in
// lower case; value: the whole entry). Any bad line is an error naming
// it, and then the old cdb stays as it was.
func runNewaliases(args []string, h string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintln(stderr, "newaliases: usage: omail-deliver -newaliases")
		return qexit.Usage
	}
	ctl := control.New(h)
	return compileCDB("newaliases", ctl.File(aliases.File), ctl.File(aliases.CDB), "aliases", aliases.Compile, stdout, stderr)
}

// runNewu is omail-deliver -newu, as qmail-newu: users/assign compiled
// into users/assign.cdb, exactly as lib/local reads it (keys "=local"
// and "+prefix" in lower case, values the rest of the line). The file
// must end with a "." line, so that a truncated file is never compiled.
func runNewu(args []string, h string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintln(stderr, "omail-deliver: usage: omail-deliver -newu")
		return qexit.Usage
	}
	return compileCDB("omail-deliver -newu", filepath.Join(h, local.AssignFile), filepath.Join(h, local.AssignCDB), "entries", compileAssign, stdout, stderr)
}

// compileCDB builds dst from src with compile, or says why not: a bad
// line or a missing src is the administrator's to fix (100), anything
// else may pass (111). Either way a failure leaves dst as it was.
func compileCDB(who, src, dst, what string, compile func(io.Reader, func(k, v string) error) (int, error), stdout, stderr io.Writer) int {
	f, err := os.Open(src)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", who, err)
		if errors.Is(err, fs.ErrNotExist) {
			return qexit.Perm
		}
		return qexit.Temp
	}
	defer f.Close()
	var n int
	err = writeCDB(dst, func(put func(k, v string) error) error {
		var err error
		n, err = compile(f, put)
		return err
	})
	if err != nil {
		return cdbFailed(who, src, filepath.Base(dst), err, stderr)
	}
	fmt.Fprintf(stdout, "%s: %s: %d %s\n", who, dst, n, what)
	return qexit.OK
}

// cdbFailed reports a build that left the old cdb in place. A bad line
// is the administrator's to fix (100); anything else may pass (111).
func cdbFailed(who, src, cdbName string, err error, stderr io.Writer) int {
	var bad *badSource
	if errors.As(err, &bad) {
		for _, l := range strings.Split(bad.Error(), "\n") {
			fmt.Fprintf(stderr, "%s: %s: %s\n", who, src, l)
		}
		fmt.Fprintf(stderr, "%s: %s not changed\n", who, cdbName)
		return qexit.Perm
	}
	fmt.Fprintf(stderr, "%s: %s not changed: %v\n", who, cdbName, err)
	return qexit.Temp
}

// badSource is an error in the file being compiled, not in writing.
type badSource struct{ err error }

func (b *badSource) Error() string { return b.err.Error() }
func (b *badSource) Unwrap() error { return b.err }

// writeCDB builds a cdb at path from what fill puts, atomically: a
// temporary file in the same directory, fsynced, renamed over the old
// one, the directory fsynced (colinmarc/cdb's Create is not atomic).
// When fill fails, the temporary file is removed and path is untouched;
// fill's error comes back as a *badSource.
func writeCDB(path string, fill func(put func(k, v string) error) error) error {
	var werr, ferr error
	err := safefile.WriteCDB(path, func(put func(k, v []byte) error) error {
		ferr = fill(func(k, v string) error {
			werr = put([]byte(k), []byte(v))
			return werr
		})
		return ferr
	})
	if err != nil && err == ferr && werr == nil {
		return &badSource{err}
	}
	return err
}

// compileAssign reads users/assign strictly: "=local:user:uid:gid:home:
// dash:ext:" and "+prefix:..." lines (blank lines skipped), up to a "."
// line, which must be there. Each bad line is an error naming it; put
// gets each entry's key (lower case, with its '=' or '+') and the rest.
func compileAssign(r io.Reader, put func(k, v string) error) (int, error) {
	var errs []error
	first := map[string]int{}
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 4096), 1<<20)
	n, end := 0, false
	for s.Scan() {
		n++
		l := strings.TrimRight(s.Text(), "\r")
		if l == "." {
			end = true
			break
		}
		if l == "" {
			continue
		}
		if err := assignLine(l, first, n); err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", n, err))
			continue
		}
		k, v, _ := strings.Cut(l, ":")
		k = aliases.Fold(k) // as lib/local folds a local part to look it up
		first[k] = n
		if len(errs) == 0 {
			if err := put(k, v); err != nil {
				return 0, err
			}
		}
	}
	if err := s.Err(); err != nil {
		return 0, fmt.Errorf("line %d: %w", n+1, err)
	}
	if !end {
		errs = append(errs, errors.New(`no "." line at the end: the file may be cut short`))
	}
	return len(first), errors.Join(errs...)
}

// assignLine checks one entry the way lib/local reads it (parseAssign):
// a user name, numeric uid and gid, an absolute home, then dash and ext.
func assignLine(l string, first map[string]int, n int) error {
	if l[0] != '=' && l[0] != '+' {
		return fmt.Errorf(`%q: an entry starts with "=" or "+"`, l)
	}
	k, v, ok := strings.Cut(l, ":")
	if !ok {
		return fmt.Errorf("%q: no ':'", l)
	}
	if prev, dup := first[aliases.Fold(k)]; dup {
		return fmt.Errorf("%s defined again (first on line %d)", k, prev)
	}
	if k == "=" {
		return fmt.Errorf("%q: an empty local part", l)
	}
	f := strings.Split(v, ":")
	if len(f) < 6 || len(f) > 7 || len(f) == 7 && f[6] != "" {
		return fmt.Errorf("%q: want %s:user:uid:gid:home:dash:ext: (six fields after the key)", l, k)
	}
	uid, err1 := strconv.Atoi(f[1])
	gid, err2 := strconv.Atoi(f[2])
	switch {
	case f[0] == "":
		return fmt.Errorf("%q: no user name", l)
	case err1 != nil || uid < 0:
		return fmt.Errorf("%q: bad uid %q", l, f[1])
	case err2 != nil || gid < 0:
		return fmt.Errorf("%q: bad gid %q", l, f[2])
	case !filepath.IsAbs(f[3]):
		return fmt.Errorf("%q: home %q is not an absolute path", l, f[3])
	}
	return nil
}
