// Package control reads omail's control files: one value per file,
// edited by hand, with qmail's rules.
//
//   - A single-value file: its first line, trailing white space (and a
//     CR from an editor that wrote CRLF) removed.
//   - A list file: every line, trimmed, skipping blank lines and lines
//     whose first non-blank character is '#'.
//   - A missing file means the default in Defaults; "me" as a default
//     means the value of the control file me, whose own default is the
//     host name.
//   - A file that exists but cannot be read is an error (a temporary
//     failure for the caller), never taken as missing.
package control

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// FromMe marks a default that is the value of the control file me.
const FromMe = "\x00me"

// Defaults holds every control file's default, in one place. A file not
// listed here defaults to empty. Lists default to one element when the
// default is non-empty.
var Defaults = map[string]string{
	"me":                FromMe, // resolved to the host name
	"locals":            FromMe,
	"databytes":         "0",
	"timeoutsmtpd":      "1200",
	"maxrcpt":           "100",
	"smtpgreeting":      FromMe,
	"holdremote":        "0",
	"queuelifetime":     "604800",
	"bouncefrom":        "MAILER-DAEMON",
	"bouncehost":        FromMe,
	"doublebounceto":    "postmaster",
	"doublebouncehost":  FromMe,
	"defaultdomain":     FromMe,
	"defaulthost":       FromMe,
	"defaultdelivery":   "",
	"mailspool":         "/var/mail",
	"ocmpdir":           "/var/ocmp",
	"ocmpsecure":        "0",
	"ocmpcreateuserdir": "0",
	"proxyscanmail":     "0",
	"pollinterval":      "60",
	"bundlemax":         "8388608",
	"bundlecompression": "zstd",
	"bundleformat":      "1",
	"concurrencylocal":  "10",
	"concurrencyremote": "20",
	"concurrencyslow":   "2",
	"slowattempts":      "5",
	"outboxlifetime":    "2592000",
	"ocmpsmall":         "65536",
	"ocmpstarve":        "86400",
	"milterport":        "inet:9801@127.0.0.1",
	"dracexpiry":        "1800",
	"timeoutconnect":    "60",
	"timeoutremote":     "1200",
	"helohost":          FromMe,
}

// Dir is a control directory.
type Dir struct {
	Path string
	// Hostname is the default for me; tests set it, nil means os.Hostname.
	Hostname func() (string, error)
	// cache keeps the files read until they change (cache.go); nil
	// reads them at every use.
	cache *fileCache
}

// New returns the control directory under an OMAIL_HOME. It keeps what
// it read until a file changes (cache.go).
func New(home string) *Dir {
	return &Dir{Path: filepath.Join(home, "control"), cache: &fileCache{}}
}

// Error is a control file that exists but could not be read or parsed.
type Error struct {
	File string
	Err  error
}

func (e *Error) Error() string { return fmt.Sprintf("control file %s: %v", e.File, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// lines returns the trimmed lines of a control file and whether it exists.
func (d *Dir) lines(name string) ([]string, bool, error) {
	path := filepath.Join(d.Path, name)
	if d.cache != nil {
		return d.cache.lines(path, name)
	}
	return readLines(path, name)
}

// readLines reads the control file name at path: its trimmed lines and
// whether it exists.
func readLines(path, name string) ([]string, bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, &Error{name, err}
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 4096), 1<<20)
	for s.Scan() {
		out = append(out, strings.TrimRight(s.Text(), " \t\r\v\f"))
	}
	if err := s.Err(); err != nil {
		return nil, true, &Error{name, err}
	}
	return out, true, nil
}

// Me returns the value of control/me, or the host name.
func (d *Dir) Me() (string, error) {
	lines, ok, err := d.lines("me")
	if err != nil {
		return "", err
	}
	if ok && len(lines) > 0 {
		if v := strings.TrimSpace(lines[0]); v != "" {
			return v, nil
		}
	}
	hn := d.Hostname
	if hn == nil {
		hn = os.Hostname
	}
	h, err := hn()
	if err != nil || h == "" {
		return "", &Error{"me", fmt.Errorf("missing, and no host name: %v", err)}
	}
	return h, nil
}

func (d *Dir) def(name string) (string, error) {
	v := Defaults[name]
	if v == FromMe {
		return d.Me()
	}
	return v, nil
}

// Line returns the first line of a single-value control file, or its
// default when the file is missing or its first line is empty.
func (d *Dir) Line(name string) (string, error) {
	if name == "me" {
		return d.Me()
	}
	lines, ok, err := d.lines(name)
	if err != nil {
		return "", err
	}
	if ok && len(lines) > 0 {
		if v := strings.TrimSpace(lines[0]); v != "" {
			return v, nil
		}
	}
	return d.def(name)
}

// Int returns a single-value control file as a non-negative integer.
func (d *Dir) Int(name string) (int64, error) {
	v, err := d.Line(name)
	if err != nil {
		return 0, err
	}
	if v == "" {
		v = "0"
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, &Error{name, fmt.Errorf("not a non-negative number: %q", v)}
	}
	return n, nil
}

// Bool returns a 0/1 control file as a bool: any number but 0 is true.
func (d *Dir) Bool(name string) (bool, error) {
	n, err := d.Int(name)
	return n != 0, err
}

// List returns the entries of a list control file, or its default (one
// entry, or none) when the file is missing.
func (d *Dir) List(name string) ([]string, error) {
	lines, ok, err := d.lines(name)
	if err != nil {
		return nil, err
	}
	if !ok {
		v, err := d.def(name)
		if err != nil || v == "" {
			return nil, err
		}
		return []string{v}, nil
	}
	var out []string
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if l == "" || l[0] == '#' {
			continue
		}
		out = append(out, l)
	}
	return out, nil
}

// Exists reports whether a control file is present.
func (d *Dir) Exists(name string) (bool, error) {
	_, err := os.Stat(filepath.Join(d.Path, name))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, &Error{name, err}
	}
	return true, nil
}

// File returns the path of a control file.
func (d *Dir) File(name string) string { return filepath.Join(d.Path, name) }

// Entry is one entry of a list control file with its line number, for
// files whose errors must name the line a person has to fix.
type Entry struct {
	Line int    // 1 for the file's first line
	Text string // trimmed
}

// Errorf is the error of a file whose entry e a parser cannot take: it
// names the file and e's line.
func (e Entry) Errorf(file, format string, args ...any) error {
	return &Error{File: file, Err: fmt.Errorf("line %d: %s", e.Line, fmt.Sprintf(format, args...))}
}

// Entries returns the entries of a list control file as List does
// (blank and '#' lines skipped), with their line numbers, and whether the
// file exists: for files where a missing file means something else than
// an empty one (ocmppeers: refuse everything; ocmpsenders: no policy).
func (d *Dir) Entries(name string) ([]Entry, bool, error) {
	lines, ok, err := d.lines(name)
	if err != nil || !ok {
		return nil, ok, err
	}
	return EntriesOf(lines), true, nil
}

// EntriesOf is the entries of a list file's lines, numbered from 1.
func EntriesOf(lines []string) []Entry {
	var out []Entry
	for i, l := range lines {
		l = strings.TrimSpace(l)
		if l == "" || l[0] == '#' {
			continue
		}
		out = append(out, Entry{Line: i + 1, Text: l})
	}
	return out
}

// ReadEntries reads the list file name of d with parse, for files whose
// parser wants line numbers: ok is false when the file is missing (v is
// then the zero value, not a parsed empty file).
func ReadEntries[T any](d *Dir, name string, parse func([]Entry) (T, error)) (v T, ok bool, err error) {
	entries, ok, err := d.Entries(name)
	if err != nil || !ok {
		return v, ok, err
	}
	v, err = parse(entries)
	return v, err == nil, err
}
