// Package eventlog writes a program's log the omail way: one line per
// event, on stderr, each line prefixed with the program's name and no
// timestamp of our own (multilog adds TAI64N).
//
// Lines of a long run of like events (one per message of a bundle) can be
// held back and written in batches: a write of at most PIPE_BUF bytes is
// never interleaved with another writer's on a pipe, and a bundle of
// 1,500 messages is then 40 writes rather than 1,500.
package eventlog

import (
	"fmt"
	"io"
)

// BatchSize is how many bytes of held lines are written at once at most:
// PIPE_BUF on Linux. (A single line longer than that is written alone.)
const BatchSize = 4096

// Log writes one program's lines to one writer. It is not safe for use
// by several goroutines at once.
type Log struct {
	w      io.Writer
	prefix string
	held   []byte // whole lines not yet written
}

// New returns the log of program (e.g. "omail-pack") on w.
func New(w io.Writer, program string) *Log {
	return &Log{w: w, prefix: program + ": "}
}

// Printf writes one line, after the lines held back.
func (l *Log) Printf(format string, args ...any) {
	l.held = l.line(l.held, format, args)
	l.Flush()
}

// Hold is Printf for one of a run of like lines: the line is held back
// until BatchSize bytes of lines, or any Printf, are to be written, or
// Flush is called. A caller flushes before it returns.
func (l *Log) Hold(format string, args ...any) {
	n := len(l.held)
	l.held = l.line(l.held, format, args)
	if len(l.held) > BatchSize && n > 0 {
		l.w.Write(l.held[:n]) // whole lines only
		l.held = l.held[:copy(l.held, l.held[n:])]
	}
}

// Flush writes the lines held back.
func (l *Log) Flush() {
	if len(l.held) > 0 {
		l.w.Write(l.held)
		l.held = l.held[:0]
	}
}

// Raw writes the lines held back and returns the writer under the log,
// for lines that another program, or code that writes its own, puts
// there (a queue program's stderr is this writer itself when it is a
// file).
func (l *Log) Raw() io.Writer {
	l.Flush()
	return l.w
}

func (l *Log) line(b []byte, format string, args []any) []byte {
	b = append(b, l.prefix...)
	b = fmt.Appendf(b, format, args...)
	return append(b, '\n')
}
