package envelope

import (
	"bytes"
	"fmt"
	"testing"
)

// BenchmarkRead parses the envelope omail-queue reads on fd 1: one
// sender and 1, 10 or 100 recipients.
func BenchmarkRead(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("rcpts=%d", n), func(b *testing.B) {
			env := &Envelope{Sender: "sender@client.example"}
			for i := 0; i < n; i++ {
				env.Rcpts = append(env.Rcpts, fmt.Sprintf("user%d@bench.example", i))
			}
			var buf bytes.Buffer
			if err := Write(&buf, env); err != nil {
				b.Fatal(err)
			}
			data := buf.Bytes()
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := Read(bytes.NewReader(data)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
