package packer

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Journals: one line per fact, "key value".
type journal struct {
	bundles []pending
	entries []string
	stamps  map[string]string // identity of each entry when journalled
	mboxLen int64
	mboxSum string
	// tmpDir is the .omail-tmp/ the bundles were written in, by
	// device and inode (a line "tmpdir DEV INO"); nil in a journal of
	// an older omail, which has no such line.
	tmpDir *dirID
}

// dirID is a directory's identity: st_dev and st_ino.
type dirID struct {
	dev, ino uint64
	// ext2/3/4 give a new directory the inode of one just removed, so
	// dev:ino alone does not tell a .omail-tmp/ made again after a move
	// from the old one. born is its birth time in nanoseconds (statx),
	// gen its inode's generation plus one (FS_IOC_GETVERSION): each 0
	// where the file system does not say.
	born, gen uint64
}

func (i dirID) String() string {
	return fmt.Sprintf("%d:%d born %d generation+1 %d", i.dev, i.ino, i.born, i.gen)
}

// same reports whether i and o surely name the same directory: the same
// device and inode, the same birth time and generation where both know
// them, and at least one of those two known to both. A directory that
// cannot be told from a new one counts as another: the price is a
// journal left for a person, never a bundle taken for published.
func (i dirID) same(o dirID) bool {
	if i.dev != o.dev || i.ino != o.ino {
		return false
	}
	known := false
	for _, v := range [][2]uint64{{i.born, o.born}, {i.gen, o.gen}} {
		if v[0] != 0 && v[1] != 0 {
			if v[0] != v[1] {
				return false
			}
			known = true
		}
	}
	return known
}

func (j *journal) marshal() []byte {
	var b strings.Builder
	for _, pd := range j.bundles {
		// Paths are quoted: ocmpdir may hold spaces.
		fmt.Fprintf(&b, "bundle %s %s %s\n", pd.id, strconv.Quote(pd.tmp), strconv.Quote(pd.upload))
	}
	for _, e := range j.entries {
		// Quoted too: the packer journals only entry names
		// (outbox.ValidName), but a journal must read back whatever
		// it holds.
		fmt.Fprintf(&b, "entry %s %s\n", strconv.Quote(e), j.stamps[e])
	}
	if j.mboxSum != "" {
		fmt.Fprintf(&b, "mbox %d %s\n", j.mboxLen, j.mboxSum)
	}
	if j.tmpDir != nil {
		fmt.Fprintf(&b, "tmpdir %d %d %d %d\n", j.tmpDir.dev, j.tmpDir.ino, j.tmpDir.born, j.tmpDir.gen)
	}
	b.WriteString("end\n")
	return []byte(b.String())
}

func readJournal(path string) (*journal, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	j := &journal{}
	complete := false
	// Every line must be understood: a journal decides what is removed,
	// so a line skipped could lose mail.
	bad := func(l string) error {
		return fmt.Errorf("journal %s: line %q not understood; left for a person", path, l)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	for _, l := range lines {
		if complete {
			return nil, bad(l)
		}
		key, rest, _ := strings.Cut(l, " ")
		switch key {
		case "bundle":
			id, paths, ok := strings.Cut(rest, " ")
			if !ok {
				return nil, bad(l)
			}
			tmp, after, err1 := unquoteNext(paths)
			upload, tail, err2 := unquoteNext(after)
			if err1 != nil || err2 != nil || tail != "" || id == "" {
				return nil, bad(l)
			}
			j.bundles = append(j.bundles, pending{id, tmp, upload})
		case "entry":
			var name, stamp string
			var err error
			if strings.HasPrefix(rest, `"`) {
				name, stamp, err = unquoteNext(rest)
			} else {
				// An older omail's journal: the name unquoted.
				var ok bool
				if name, stamp, ok = strings.Cut(rest, " "); !ok {
					err = errors.New("no stamp")
				}
			}
			if err != nil || name == "" || strings.Contains(name, "/") || name[0] == '.' || stamp == "" || strings.Contains(stamp, " ") {
				return nil, bad(l)
			}
			if j.stamps == nil {
				j.stamps = map[string]string{}
			}
			j.entries = append(j.entries, name)
			j.stamps[name] = stamp
		case "mbox":
			f := strings.Fields(rest)
			if len(f) != 2 {
				return nil, bad(l)
			}
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil || n < 0 {
				return nil, bad(l)
			}
			j.mboxLen, j.mboxSum = n, f[1]
		case "tmpdir":
			// DEV INO BORN GEN; fewer in a journal of an earlier build
			// (unknown, so never "the same directory").
			f := strings.Fields(rest)
			if len(f) < 2 || len(f) > 4 || j.tmpDir != nil || rest != strings.Join(f, " ") {
				return nil, bad(l)
			}
			var id [4]uint64
			for i, v := range f {
				n, err := strconv.ParseUint(v, 10, 64)
				if err != nil {
					return nil, bad(l)
				}
				id[i] = n
			}
			j.tmpDir = &dirID{id[0], id[1], id[2], id[3]}
		case "end":
			if rest != "" {
				return nil, bad(l)
			}
			complete = true
		default:
			return nil, bad(l)
		}
	}
	if !complete {
		return nil, fmt.Errorf("journal %s is incomplete", path)
	}
	if len(j.bundles) == 0 && (len(j.entries) > 0 || j.mboxSum != "") {
		return nil, fmt.Errorf("journal %s removes mail but names no bundle; left for a person", path)
	}
	return j, nil
}

// stamp identifies one file, not one name: its inode and its change
// time to the nanosecond (an inode number alone is reused at once after
// a removal). "-" when there is no such file.
func stamp(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return "-"
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "-"
	}
	return fmt.Sprintf("%d.%d.%d", st.Ino, st.Ctim.Sec, st.Ctim.Nsec)
}

// unquoteNext reads one Go-quoted string at the start of s and returns
// it and what follows, without the separating space.
func unquoteNext(s string) (string, string, error) {
	q, err := strconv.QuotedPrefix(s)
	if err != nil {
		return "", "", err
	}
	v, err := strconv.Unquote(q)
	if err != nil {
		return "", "", err
	}
	return v, strings.TrimPrefix(s[len(q):], " "), nil
}
