package safefile

import (
	"io"

	"github.com/colinmarc/cdb"
)

// WriteCDB builds the cdb at path from what fill puts, atomically: a
// temporary file in the same directory, fsynced, renamed over the old
// one, the directory fsynced (colinmarc/cdb's own Create writes in
// place). When fill or a put fails, the temporary file is removed, path
// is untouched, and that error comes back as it is.
func WriteCDB(path string, fill func(put func(key, value []byte) error) error) error {
	f, err := Create(path, 0o644)
	if err != nil {
		return err
	}
	defer f.Abort()
	w, err := cdb.NewWriter(noClose{f}, nil)
	if err != nil {
		return err
	}
	if err := fill(w.Put); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return f.Commit()
}

// noClose hides the file's Close from cdb.Writer, which would otherwise
// close it before it can be fsynced and renamed.
type noClose struct{ io.WriteSeeker }
