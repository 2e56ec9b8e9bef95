package remote

import (
	"bytes"
	"io"
	"testing"
)

// BenchmarkDotStuff writes a 1 MiB LF message as SMTP DATA: CRLF line
// ends and a dot doubled on every tenth line.
func BenchmarkDotStuff(b *testing.B) {
	var msg bytes.Buffer
	for i := 0; msg.Len() < 1<<20; i++ {
		if i%10 == 0 {
			msg.WriteString(".a line that starts with a dot\n")
		} else {
			msg.WriteString("an ordinary line of text in the body of a message, 70 bytes or so\n")
		}
	}
	data := msg.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ww := newWireWriter(io.Discard, true)
		if _, err := io.Copy(ww, bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
		if err := ww.Finish(); err != nil {
			b.Fatal(err)
		}
	}
}
