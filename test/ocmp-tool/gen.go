package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand"
	"os"
	"time"

	"omail/lib/bundle"
)

// A generator of plausible mail, the same for every run (fixed seed):
// headers that repeat with variations, as real mail does, bodies of
// words from a vocabulary with a Zipf-like spread, and now and then a
// base64 "attachment" of random bytes, which compresses as badly as real
// attachments do.
type gen struct {
	r     *rand.Rand
	words []string
	zipf  *rand.Zipf
	n     int
}

func newGen() *gen {
	r := rand.New(rand.NewSource(1))
	g := &gen{r: r, zipf: rand.NewZipf(r, 1.1, 2, 4999)}
	const letters = "etaoinshrdlcumwfgypbvkjxqz"
	for i := 0; i < 5000; i++ {
		n := 2 + r.Intn(8)
		w := make([]byte, n)
		for j := range w {
			w[j] = letters[int(r.ExpFloat64()*5)%len(letters)]
		}
		g.words = append(g.words, string(w))
	}
	return g
}

var people = []string{"alice", "bob", "carol", "dan", "erin", "frank", "grace", "heidi", "ivan", "judy"}
var domains = []string{"example.org", "example.net", "kiosk.example", "mail.example.com"}

func (g *gen) addr() string {
	return people[g.r.Intn(len(people))] + "@" + domains[g.r.Intn(len(domains))]
}

// message returns one message and its envelope sender.
func (g *gen) message() ([]byte, string) {
	g.n++
	var b bytes.Buffer
	from := g.addr()
	t := time.Unix(1700000000+int64(g.n)*37, 0).UTC()
	fmt.Fprintf(&b, "Received: from mx%d.%s by proxy.example with ESMTP id %08x; %s\n", g.r.Intn(9), domains[g.r.Intn(4)], g.r.Uint32(), t.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "From: %s\nTo: %s\nSubject: %s %s %s\nDate: %s\nMessage-ID: <%d.%x@%s>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n",
		from, g.addr(), g.words[g.zipf.Uint64()], g.words[g.zipf.Uint64()], g.words[g.zipf.Uint64()], t.Format(time.RFC1123Z), g.n, g.r.Uint64(), domains[g.r.Intn(4)])
	size := 500 + int(g.r.ExpFloat64()*3000)
	col := 0
	for b.Len() < size {
		w := g.words[g.zipf.Uint64()]
		if col+len(w) > 72 {
			b.WriteByte('\n')
			col = 0
		} else if col > 0 {
			b.WriteByte(' ')
			col++
		}
		b.WriteString(w)
		col += len(w)
	}
	b.WriteString("\n")
	if g.r.Intn(10) == 0 {
		raw := make([]byte, 2000+g.r.Intn(30000))
		g.r.Read(raw)
		b.WriteString("\n--attachment\nContent-Transfer-Encoding: base64\n\n")
		enc := make([]byte, 4*((len(raw)+2)/3))
		encodeBase64(enc, raw)
		for len(enc) > 76 {
			b.Write(enc[:76])
			b.WriteByte('\n')
			enc = enc[76:]
		}
		b.Write(enc)
		b.WriteByte('\n')
	}
	return b.Bytes(), from
}

func encodeBase64(dst, src []byte) {
	const tab = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i, j := 0, 0; i < len(src); i, j = i+3, j+4 {
		var v uint32
		n := len(src) - i
		if n > 3 {
			n = 3
		}
		for k := 0; k < 3; k++ {
			v <<= 8
			if k < n {
				v |= uint32(src[i+k])
			}
		}
		for k := 0; k < 4; k++ {
			if k <= n {
				dst[j+k] = tab[v>>(18-6*uint(k))&63]
			} else {
				dst[j+k] = '='
			}
		}
	}
}

// genMbox writes about total bytes of mail as an mbox (mboxrd: no body
// line starts with "From ", so no quoting is needed).
func genMbox(w io.Writer, total int64) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	g := newGen()
	for n := int64(0); n < total; {
		m, from := g.message()
		fmt.Fprintf(bw, "From %s Mon Jan  1 00:00:00 2024\n", from)
		bw.Write(m)
		bw.WriteString("\n")
		n += int64(len(m))
	}
	return bw.Flush()
}

// genBundle writes about total bytes of mail as one zstd bundle.
func genBundle(path string, total int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	w, err := bundle.NewWriter(bw, bundle.Zstd, bundle.Header{ID: bundle.NewID(), Endpoint: "bench", Created: time.Now()})
	if err != nil {
		return err
	}
	g := newGen()
	for n := int64(0); n < total; {
		m, from := g.message()
		if err := w.Add(from, []string{"user@kiosk.example"}, int64(len(m)), bytes.NewReader(m)); err != nil {
			return err
		}
		n += int64(len(m))
	}
	if err := w.Close(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return f.Close()
}
