// Package aliases reads an aliases file in the /etc/aliases format and
// looks names up in it. omail's file is $OMAIL_HOME/control/aliases.
//
//	# comment (a line whose first character is '#')
//	postmaster: root
//	root: bob, ann@example.org
//	archive: /var/mail/archive, /home/arc/Maildir/
//	bugs: "|/usr/local/bin/tracker --queue=bugs, urgent"
//	staff: bob,
//	    ann          (a line starting with white space continues the entry)
//	bob: \bob, bob@elsewhere.example
//
// A '#' line is a comment also among continuation lines. A name is
// everything before the first ':' (it may be in double quotes), compared
// without ASCII case and in Unicode NFC (Fold). The right-hand side is a
// comma-separated list; an element in double quotes may hold commas and spaces (\" and \\ inside
// quotes stand for " and \). Each element is
//
//	|command     a program, run by /bin/sh -c
//	/path/       a Maildir (ends in '/')
//	/path        an mbox file
//	\name        the local user name itself, without looking at aliases
//	             again (to keep a copy while forwarding)
//	address      anything else: forwarded (re-queued), so it may be
//	             another alias
//
//	:include:/path  the addresses (and other targets) listed in the file
//	             /path, read at each delivery (include.go)
//
// A name defined twice is an error: which one was meant is not ours to
// guess. Parse keeps going after a bad entry: the good entries work, a
// bad one's name defers (Find), and a bad line whose name cannot be read
// defers every name that is not defined by a good entry, since it might
// have been any of them. Compile, for the cdb, is strict instead.
package aliases

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/text/unicode/norm"
)

// Kind says what a target does.
type Kind int

const (
	Program Kind = iota + 1
	Forward
	Mbox
	Maildir
	User
	Include // :include:/path; Find and LookupIn replace it by the file's targets
)

func (k Kind) String() string {
	return [...]string{"?", "program", "forward", "mbox", "maildir", "user", "include"}[min(int(k), 6)]
}

// Target is one element of an alias's list.
type Target struct {
	Kind  Kind
	Value string // command, address, path or user name
}

// Aliases is a parsed aliases file.
type Aliases struct {
	m      map[string][]Target
	bad    map[string]error // names whose entry is bad or defined twice
	unsure error            // a bad line whose name cannot be read
}

// MaxSize bounds the file.
const MaxSize = 16 << 20

// scan reads the logical entries of an aliases file: a line that does
// not start with white space, joined by one space with the continuation
// lines after it (comment lines skipped). start is the entry's first
// line; text is "" and err set for a continuation line with nothing to
// continue. The error returned is the file's (size, reading), after
// which nothing can be trusted.
func scan(r io.Reader, fn func(start int, text string, err error)) error {
	br := bufio.NewReader(io.LimitReader(r, MaxSize+1))
	var entry strings.Builder
	start, size := 0, 0
	flush := func() {
		if entry.Len() > 0 {
			fn(start, entry.String(), nil)
			entry.Reset()
		}
	}
	for n := 1; ; n++ {
		line, err := br.ReadString('\n')
		size += len(line)
		if size > MaxSize {
			return fmt.Errorf("aliases larger than %d bytes", MaxSize)
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case strings.TrimSpace(line) == "" || strings.TrimSpace(line)[0] == '#':
		case line[0] == ' ' || line[0] == '\t':
			if entry.Len() == 0 {
				fn(n, "", errors.New("continuation line with nothing to continue"))
				break
			}
			entry.WriteString(" " + strings.TrimSpace(line))
		default:
			flush()
			start = n
			entry.WriteString(line)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	flush()
	return nil
}

// Parse reads an aliases file, keeping the good entries and remembering
// the bad ones (Find). The error is for the file as a whole: too large,
// or unreadable.
func Parse(r io.Reader) (*Aliases, error) {
	a := &Aliases{m: map[string][]Target{}, bad: map[string]error{}}
	first := map[string]int{}
	err := scan(r, func(n int, text string, err error) {
		name, targets := "", []Target(nil)
		if err == nil {
			name, targets, err = ParseEntry(text)
		}
		if err != nil {
			name = entryName(text)
			if name == "" {
				if a.unsure == nil {
					a.unsure = fmt.Errorf("line %d: %w", n, err)
				}
				return
			}
			if _, dup := a.bad[name]; !dup {
				a.bad[name] = fmt.Errorf("line %d: %w", n, err)
			}
			delete(a.m, name)
			return
		}
		if l, dup := first[name]; dup {
			a.bad[name] = fmt.Errorf("line %d: %q defined again (first on line %d)", n, name, l)
			delete(a.m, name)
			return
		}
		first[name] = n
		if _, bad := a.bad[name]; !bad {
			a.m[name] = targets
		}
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// Compile reads an aliases file strictly, for aliases.cdb: every bad
// line is an error naming its line (all of them, not just the first),
// and put is called for each entry with its lower-case name and the
// entry's text, which ParseEntry reads back. On an error the caller must
// throw away whatever put wrote.
func Compile(r io.Reader, put func(name, entry string) error) (int, error) {
	var errs []error
	first := map[string]int{}
	err := scan(r, func(n int, text string, err error) {
		name := ""
		if err == nil {
			name, _, err = ParseEntry(text)
		}
		if err == nil {
			if l, dup := first[name]; dup {
				err = fmt.Errorf("%q defined again (first on line %d)", name, l)
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", n, err))
			return
		}
		first[name] = n
		if len(errs) == 0 {
			if err := put(name, text); err != nil {
				errs = append(errs, err)
			}
		}
	})
	if err != nil {
		return 0, err
	}
	if len(errs) > 0 {
		return 0, errors.Join(errs...)
	}
	return len(first), nil
}

// entryName is the name of an entry that did not parse, when it can be
// read: the text before the first ':', unquoted, one word. "" when not.
func entryName(text string) string {
	before, _, ok := strings.Cut(text, ":")
	if !ok {
		return ""
	}
	name := Fold(strings.TrimSpace(strings.Trim(strings.TrimSpace(before), `"`)))
	if name == "" || strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '"' }) {
		return ""
	}
	return name
}

// Find returns the targets of name, compared without case, as written
// (an Include target is not expanded: LookupIn does that). err is set
// when the answer cannot be trusted: name's own entry is bad or defined
// twice, or name is not defined by a good entry and some bad line's name
// cannot be read. The caller defers such a recipient.
func (a *Aliases) Find(name string) ([]Target, bool, error) {
	if a == nil {
		return nil, false, nil
	}
	name = Fold(name)
	if err := a.bad[name]; err != nil {
		return nil, false, err
	}
	if t, ok := a.m[name]; ok {
		return t, true, nil
	}
	if a.unsure != nil {
		return nil, false, fmt.Errorf("cannot tell whether %s is an alias: %w", name, a.unsure)
	}
	return nil, false, nil
}

// Lookup returns the targets of name, compared without case, from the
// good entries only (Find also says what cannot be decided).
func (a *Aliases) Lookup(name string) ([]Target, bool) {
	if a == nil {
		return nil, false
	}
	t, ok := a.m[Fold(name)]
	return t, ok
}

// Len is the number of aliases.
func (a *Aliases) Len() int {
	if a == nil {
		return 0
	}
	return len(a.m)
}

// ParseEntry parses one logical entry "name: target, target".
func ParseEntry(s string) (name string, targets []Target, err error) {
	items, err := split(s, true)
	if err != nil {
		return "", nil, err
	}
	name = Fold(items[0])
	if name == "" || strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return "", nil, fmt.Errorf("bad alias name %q", items[0])
	}
	for _, it := range items[1:] {
		if it == "" {
			continue
		}
		t, err := target(it)
		if err != nil {
			return "", nil, fmt.Errorf("%s: %w", name, err)
		}
		targets = append(targets, t)
	}
	if len(targets) == 0 {
		return "", nil, fmt.Errorf("%s: no targets", name)
	}
	return name, targets, nil
}

func target(it string) (Target, error) {
	if strings.ContainsFunc(it, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
		return Target{}, fmt.Errorf("control character in %q", it)
	}
	switch {
	case strings.HasPrefix(it, "|"):
		if strings.TrimSpace(it[1:]) == "" {
			return Target{}, errors.New("empty program")
		}
		return Target{Program, it[1:]}, nil
	case strings.HasPrefix(strings.ToLower(it), ":include:"):
		p := strings.TrimSpace(it[len(":include:"):])
		if !strings.HasPrefix(p, "/") {
			return Target{}, fmt.Errorf("%q: an :include: file is an absolute path", it)
		}
		return Target{Include, p}, nil
	case strings.HasPrefix(it, "/"):
		if strings.HasSuffix(it, "/") {
			return Target{Maildir, it}, nil
		}
		return Target{Mbox, it}, nil
	case strings.HasPrefix(it, `\`):
		u := it[1:]
		if u == "" || strings.ContainsAny(u, " \t@/\\") {
			return Target{}, fmt.Errorf("bad local user %q", it)
		}
		return Target{User, Fold(u)}, nil
	}
	if strings.ContainsAny(it, " \t<>") {
		return Target{}, fmt.Errorf("bad address %q", it)
	}
	return Target{Forward, it}, nil
}

// split cuts an entry at the first unquoted ':' (when name is true) and
// then (or from the start) at unquoted commas, removing quotes and surrounding white space.
func split(s string, name bool) ([]string, error) {
	var out []string
	var cur strings.Builder
	inq := false
	want := byte(':')
	if !name {
		want = ','
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inq && c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case c == '"':
			inq = !inq
		case !inq && c == want:
			out = append(out, strings.TrimSpace(cur.String()))
			cur.Reset()
			want = ','
		default:
			cur.WriteByte(c)
		}
	}
	if inq {
		return nil, errors.New("unbalanced quotes")
	}
	if name && want == ':' {
		return nil, errors.New("no ':' after the name")
	}
	return append(out, strings.TrimSpace(cur.String())), nil
}

// Fold is the form in which a local part is compared with the names of
// aliases, users/assign and the password database: ASCII letters in lower
// case, then Unicode NFC (RFC 6532 section 3.1 asks for NFC). An SMTPUTF8
// client may send "ü" as u + U+0308 (NFD) while the aliases file holds
// the one code point U+00FC, or the other way round: both fold to the
// same bytes. Bytes that are not UTF-8 are left as they are.
func Fold(s string) string {
	return norm.NFC.String(LowerASCII(s))
}

// LowerASCII lower-cases the ASCII letters only: local parts compare
// without ASCII case, and Unicode case mapping does not round-trip.
func LowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
