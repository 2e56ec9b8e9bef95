package mbox

import (
	"bytes"
	"io"
	"testing"
)

// BenchmarkReader splits a 16 MiB mbox into messages, as omail-pack
// does with proxyscanmail.
func BenchmarkReader(b *testing.B) {
	var mb bytes.Buffer
	msg := bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog\n"), 100)
	for mb.Len() < 16<<20 {
		mb.WriteString("From sender@client.example Thu Jan  1 00:00:00 1970\nSubject: x\n\n")
		mb.Write(msg)
		mb.WriteString(">From a quoted line\n\n")
	}
	data := mb.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m := NewReader(bytes.NewReader(data))
		for {
			_, body, err := m.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, body); err != nil {
				b.Fatal(err)
			}
		}
	}
}
