package bundle

import (
	"bytes"
	"io"
	"testing"
)

// BenchmarkRead decodes a 16 MiB bundle message by message, reading
// every body, as omail-unpack does.
func BenchmarkRead(b *testing.B) {
	data := benchBundle(b, Zstd, 16<<20)
	b.SetBytes(16 << 20)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, err := NewReader(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		for {
			m, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, m.Body); err != nil {
				b.Fatal(err)
			}
		}
		r.Close()
	}
}
