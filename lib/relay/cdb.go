package relay

import (
	"fmt"

	"omail/lib/control"
	"omail/lib/safefile"
)

// Maps are the compiled control maps omail-smtpd reads, each built from
// the list file of the same name without ".cdb". Keys are in the form
// the lookups use, so a hand edit cannot miss by case.
var Maps = []struct {
	Source string
	Key    func(line string) string
}{
	{"morercpthosts", DomainKey},
	{"relaymailfrom", mailFromKey},
}

// Rebuild compiles every map in Maps whose source file exists. Each cdb
// is written to a temporary file in the control directory, fsynced,
// renamed over the old one and the directory fsynced, so a reader sees
// the old map or the new, never a half-written one. It returns the
// names of the files written.
func Rebuild(ctl *control.Dir) ([]string, error) {
	var done []string
	for _, m := range Maps {
		ok, err := ctl.Exists(m.Source)
		if err != nil {
			return done, err
		}
		if !ok {
			continue
		}
		lines, err := ctl.List(m.Source)
		if err != nil {
			return done, err
		}
		if err := writeCDB(ctl.File(m.Source+".cdb"), lines, m.Key); err != nil {
			return done, fmt.Errorf("%s.cdb: %w", m.Source, err)
		}
		done = append(done, m.Source+".cdb")
	}
	return done, nil
}

// writeCDB compiles a list into the cdb at path: each line's key (key
// gives "" for a line to skip), once, with an empty value.
func writeCDB(path string, lines []string, key func(string) string) error {
	return safefile.WriteCDB(path, func(put func(k, v []byte) error) error {
		seen := map[string]bool{}
		for _, l := range lines {
			k := key(l)
			if k == "" || seen[k] {
				continue
			}
			seen[k] = true
			if err := put([]byte(k), nil); err != nil {
				return err
			}
		}
		return nil
	})
}
