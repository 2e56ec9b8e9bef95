// Package dotomail parses .omail files, qmail's dot-qmail instructions.
//
// One instruction per line:
//
//	# comment            ignored, as are blank lines
//	|command args        program: run by /bin/sh -c with the message on stdin
//	&address             forward to address
//	address              forward (the line starts with a letter or digit)
//	./Maildir/           Maildir (a path that ends in '/')
//	./mbox, /abs/mbox    mbox file (a path starting with '.' or '/')
//
// A program line is passed to the shell as written (after the '|'); on
// every other line trailing white space and a CR are removed. Any other
// first character is an error, reported with the line number: we will
// not guess what a person meant by a line we do not understand.
//
// As qmail's dot-qmail: an empty file (0 bytes, or only blank lines)
// holds no instructions, and the caller delivers the default way; a
// file with comment lines and no instruction discards the message
// (Parse returns a single Discard instruction), the way a user says
// "throw this away" ("# spam" in .omail-spam). Blank lines alone do
// not discard: an `echo > .omail` by mistake must not lose mail.
package dotomail

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Kind says what an instruction does.
type Kind int

const (
	Program Kind = iota + 1
	Forward
	Mbox
	Maildir
	Discard // a file of comments only: deliver nowhere, successfully
)

func (k Kind) String() string {
	switch k {
	case Program:
		return "program"
	case Forward:
		return "forward"
	case Mbox:
		return "mbox"
	case Maildir:
		return "maildir"
	case Discard:
		return "discard"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Instruction is one delivery line.
type Instruction struct {
	Kind  Kind
	Value string // the command, address or path as written
	Line  int    // 1-based line number, for error messages
}

// MaxSize bounds the file read: a .omail is a few lines.
const MaxSize = 1 << 20

// ParseLine parses one line. ok is false for comments and blank lines.
func ParseLine(line string, n int) (ins Instruction, ok bool, err error) {
	line = strings.TrimSuffix(line, "\n")
	if strings.HasPrefix(line, "|") {
		cmd := strings.TrimSuffix(line[1:], "\r")
		if strings.TrimSpace(cmd) == "" {
			return ins, false, fmt.Errorf("line %d: empty program", n)
		}
		if strings.ContainsRune(cmd, 0) {
			return ins, false, fmt.Errorf("line %d: NUL in program", n)
		}
		return Instruction{Program, cmd, n}, true, nil
	}
	line = strings.TrimRight(line, " \t\r")
	if line == "" || line[0] == '#' {
		return ins, false, nil
	}
	if strings.ContainsFunc(line, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return ins, false, fmt.Errorf("line %d: control character", n)
	}
	switch c := line[0]; {
	case c == '.' || c == '/':
		if strings.HasSuffix(line, "/") {
			return Instruction{Maildir, line, n}, true, nil
		}
		return Instruction{Mbox, line, n}, true, nil
	case c == '&':
		return forward(line[1:], n)
	case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9':
		return forward(line, n)
	}
	return ins, false, fmt.Errorf("line %d: not an instruction: %q", n, line)
}

func forward(addr string, n int) (Instruction, bool, error) {
	addr = strings.TrimSpace(addr)
	if addr == "" || strings.ContainsAny(addr, " \t<>,") {
		return Instruction{}, false, fmt.Errorf("line %d: bad forwarding address %q", n, addr)
	}
	return Instruction{Forward, addr, n}, true, nil
}

// Parse reads a whole .omail file. It returns no instruction for an
// empty file (the default delivery) and one Discard for a file of
// comments only.
func Parse(r io.Reader) ([]Instruction, error) {
	br := bufio.NewReader(io.LimitReader(r, MaxSize+1))
	var out []Instruction
	var size, comment int
	for n := 1; ; n++ {
		line, err := br.ReadString('\n')
		size += len(line)
		if size > MaxSize {
			return nil, fmt.Errorf("file larger than %d bytes", MaxSize)
		}
		if line != "" {
			ins, ok, perr := ParseLine(line, n)
			if perr != nil {
				return nil, perr
			}
			if ok {
				out = append(out, ins)
			} else if comment == 0 && strings.HasPrefix(line, "#") {
				comment = n
			}
		}
		if err == io.EOF {
			if len(out) == 0 && comment > 0 {
				return []Instruction{{Discard, "", comment}}, nil
			}
			return out, nil
		}
		if err != nil {
			return nil, err
		}
	}
}
