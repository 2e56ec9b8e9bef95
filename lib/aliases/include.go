package aliases

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"

	"omail/lib/control"
)

// File and CDB are the aliases file and its compiled form in the control
// directory. The cdb, when present, is used instead of the file (built
// by omail-deliver -newaliases): its keys are the names folded (Fold),
// its values the whole logical entry, "name: target, ...".
const (
	File = "aliases"
	CDB  = "aliases.cdb"
)

// LookupIn finds name in the aliases of a control directory (the cdb
// when present, else the text file) and replaces each :include: target
// by the targets its file lists. An error means the recipient must wait:
// its entry is bad, or an included file is missing, unsafe or bad.
func LookupIn(ctl *control.Dir, name string) ([]Target, bool, error) {
	name = Fold(name)
	t, ok, err := lookupRaw(ctl, name)
	if err != nil || !ok {
		return nil, false, err
	}
	if t, err = expand(ctl, name, t); err != nil {
		return nil, false, err
	}
	return t, true, nil
}

func lookupRaw(ctl *control.Dir, name string) ([]Target, bool, error) {
	db, err := ctl.OpenCDB(CDB)
	if err != nil {
		return nil, false, err
	}
	if db != nil {
		defer db.Close()
		entry, ok, err := db.Get(name)
		if err != nil || !ok {
			return nil, false, err
		}
		_, t, err := ParseEntry(entry)
		if err != nil {
			return nil, false, fmt.Errorf("%s: %s: %v", CDB, name, err)
		}
		return t, true, nil
	}
	f, err := os.Open(ctl.File(File))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	a, err := Parse(f)
	if err != nil {
		return nil, false, err
	}
	return a.Find(name)
}

// expand replaces :include: targets, one level deep. An included file
// must be a regular file owned by root or by the owner of the aliases
// file (of the cdb when there is no text file) and not writable by
// others: whoever can write it chooses where the alias's mail goes and
// which programs run as the aliases file's owner.
func expand(ctl *control.Dir, name string, in []Target) ([]Target, error) {
	var out []Target
	owner := -1
	for _, t := range in {
		if t.Kind != Include {
			out = append(out, t)
			continue
		}
		if owner < 0 {
			var err error
			if owner, err = aliasesOwner(ctl); err != nil {
				return nil, err
			}
		}
		more, err := readInclude(t.Value, owner)
		if err != nil {
			return nil, fmt.Errorf("%s: :include:%s: %v", name, t.Value, err)
		}
		out = append(out, more...)
	}
	return out, nil
}

func aliasesOwner(ctl *control.Dir) (int, error) {
	var st syscall.Stat_t
	err := syscall.Stat(ctl.File(File), &st)
	if errors.Is(err, fs.ErrNotExist) {
		err = syscall.Stat(ctl.File(CDB), &st)
	}
	if err != nil {
		return 0, fmt.Errorf("owner of the aliases: %v", err)
	}
	return int(st.Uid), nil
}

// readInclude reads an included list: targets separated by commas or
// line ends, '#' lines and blank lines skipped, the element syntax of an
// aliases entry's right-hand side; no :include: inside.
func readInclude(path string, owner int) ([]Target, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return nil, err
	}
	switch {
	case st.Mode&syscall.S_IFMT != syscall.S_IFREG:
		return nil, errors.New("not a regular file")
	case st.Uid != 0 && int(st.Uid) != owner:
		return nil, fmt.Errorf("owned by uid %d, neither root nor the aliases file's owner (uid %d)", st.Uid, owner)
	case st.Mode&0o002 != 0:
		return nil, errors.New("writable by others")
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxSize {
		return nil, fmt.Errorf("larger than %d bytes", MaxSize)
	}
	var out []Target
	for n, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		items, err := split(line, false)
		if err != nil {
			return nil, fmt.Errorf("line %d: %v", n+1, err)
		}
		for _, it := range items {
			if it == "" {
				continue
			}
			t, err := target(it)
			if err == nil && t.Kind == Include {
				err = errors.New(":include: inside an included file")
			}
			if err != nil {
				return nil, fmt.Errorf("line %d: %v", n+1, err)
			}
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("lists nobody")
	}
	return out, nil
}
