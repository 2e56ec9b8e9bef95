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
// without ASCII case. The right-hand side is a comma-separated list;
// an element in double quotes may hold commas and spaces (\" and \\ inside
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
// :include: lists are not supported and are reported as an error. A name
// defined twice is an error too: which one was meant is not ours to guess.
package aliases

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Kind says what a target does.
type Kind int

const (
	Program Kind = iota + 1
	Forward
	Mbox
	Maildir
	User
)

func (k Kind) String() string {
	return [...]string{"?", "program", "forward", "mbox", "maildir", "user"}[min(int(k), 5)]
}

// Target is one element of an alias's list.
type Target struct {
	Kind  Kind
	Value string // command, address, path or user name
}

// Aliases is a parsed aliases file.
type Aliases struct {
	m map[string][]Target
}

// MaxSize bounds the file.
const MaxSize = 16 << 20

// Parse reads an aliases file. Errors name the line.
func Parse(r io.Reader) (*Aliases, error) {
	a := &Aliases{m: map[string][]Target{}}
	br := bufio.NewReader(io.LimitReader(r, MaxSize+1))
	var entry strings.Builder
	start, size := 0, 0
	flush := func() error {
		if entry.Len() == 0 {
			return nil
		}
		defer entry.Reset()
		name, targets, err := ParseEntry(entry.String())
		if err != nil {
			return fmt.Errorf("line %d: %w", start, err)
		}
		if _, dup := a.m[name]; dup {
			return fmt.Errorf("line %d: %q defined again", start, name)
		}
		a.m[name] = targets
		return nil
	}
	for n := 1; ; n++ {
		line, err := br.ReadString('\n')
		size += len(line)
		if size > MaxSize {
			return nil, fmt.Errorf("aliases larger than %d bytes", MaxSize)
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case strings.TrimSpace(line) == "" || strings.TrimSpace(line)[0] == '#':
		case line[0] == ' ' || line[0] == '\t':
			if entry.Len() == 0 {
				return nil, fmt.Errorf("line %d: continuation line with nothing to continue", n)
			}
			entry.WriteString(" " + strings.TrimSpace(line))
		default:
			if ferr := flush(); ferr != nil {
				return nil, ferr
			}
			start = n
			entry.WriteString(line)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return a, nil
}

// Lookup returns the targets of name, compared without case.
func (a *Aliases) Lookup(name string) ([]Target, bool) {
	if a == nil {
		return nil, false
	}
	t, ok := a.m[LowerASCII(name)]
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
	name = LowerASCII(items[0])
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
		return Target{}, errors.New(":include: is not supported")
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
		return Target{User, LowerASCII(u)}, nil
	}
	if strings.ContainsAny(it, " \t<>") {
		return Target{}, fmt.Errorf("bad address %q", it)
	}
	return Target{Forward, it}, nil
}

// split cuts an entry at the first unquoted ':' (when name is true) and
// then at unquoted commas, removing quotes and surrounding white space.
func split(s string, name bool) ([]string, error) {
	var out []string
	var cur strings.Builder
	inq := false
	want := byte(':')
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
