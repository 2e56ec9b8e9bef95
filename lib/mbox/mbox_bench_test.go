package mbox

import (
	"bufio"
	"bytes"
	"io"
	"testing"
)

// BenchmarkQuote runs a 1 MiB message through the mboxrd quoter, with
// a "From " line every 20 lines so the quoting path is taken too.
func BenchmarkQuote(b *testing.B) {
	var msg bytes.Buffer
	for i := 0; msg.Len() < 1<<20; i++ {
		if i%20 == 0 {
			msg.WriteString("From the quoting path, a line that needs a '>'\n")
		} else {
			msg.WriteString("an ordinary line of text in the body of a message, 70 bytes or so\n")
		}
	}
	data := msg.Bytes()
	w := bufio.NewWriterSize(io.Discard, 64<<10)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		q := quoter{w: w, start: true}
		if _, err := io.Copy(&q, bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
		if err := q.close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppend is one delivery's worth of mbox work: Open (both
// locks, the dotlock written and linked), a 4 KiB message added,
// Commit (fsync, the dotlock removed, unlocked).
func BenchmarkAppend(b *testing.B) {
	path := b.TempDir() + "/mbox"
	msg := bytes.Repeat([]byte("a line of a message body, some sixty bytes long or so......\n"), 68)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		a, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		if err := a.Add("a@b", []string{"Delivered-To: c@d"}, bytes.NewReader(msg), when); err != nil {
			b.Fatal(err)
		}
		if err := a.Commit(); err != nil {
			b.Fatal(err)
		}
	}
}
