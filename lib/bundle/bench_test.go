package bundle

import (
	"bytes"
	"fmt"
	"io"
	"math/rand"
	"strings"
	"testing"
	"time"
)

// benchBundle makes a bundle of about size bytes of text mail.
func benchBundle(b *testing.B, comp string, size int) []byte {
	r := rand.New(rand.NewSource(1))
	words := strings.Fields("the of and to in a is that for it as was with be by on not he this are or his from at which but have an they you were her all she there would their we him been has when who will more no if out so said what up its about into than them can only other new some could time these two may then do first any my now such like our over man me even most made after also did many before must through back years where much your way well down should because each just those people how too little state good very make world still own see men work long get here between both life being under never day same another know while last might us great old year off come since against go came right used take three")
	var msgs [][]byte
	for len(msgs) < 200 {
		var m bytes.Buffer
		fmt.Fprintf(&m, "From: a@b\nSubject: %d\n\n", len(msgs))
		for m.Len() < 2000+r.Intn(20000) {
			m.WriteString(words[r.Intn(len(words))])
			if r.Intn(12) == 0 {
				m.WriteByte('\n')
			} else {
				m.WriteByte(' ')
			}
		}
		msgs = append(msgs, m.Bytes())
	}
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, comp, Header{ID: NewID(), Endpoint: "bench", Created: time.Unix(0, 0)})
	for n, i := 0, 0; n < size; i++ {
		m := msgs[i%len(msgs)]
		w.Add("a@b", []string{"c@d"}, int64(len(m)), bytes.NewReader(m))
		n += len(m)
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

func BenchmarkVerify(b *testing.B) {
	data := benchBundle(b, Zstd, 64<<20)
	b.SetBytes(64 << 20)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := Verify(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWrite(b *testing.B) {
	msg := bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog\n"), 500)
	b.SetBytes(int64(len(msg)) * 1000)
	for i := 0; i < b.N; i++ {
		w, _ := NewWriter(io.Discard, Zstd, Header{ID: NewID(), Endpoint: "bench"})
		for j := 0; j < 1000; j++ {
			w.Add("a@b", []string{"c@d"}, int64(len(msg)), bytes.NewReader(msg))
		}
		w.Close()
	}
}
