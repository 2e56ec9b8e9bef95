package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand"
	"os"
	"strings"
	"time"

	"omail/lib/bundle"
)

// A generator of plausible mail, the same for every run (fixed seed):
// headers that repeat with variations, as real mail does, bodies of
// English words with a Zipf-like spread, replies that quote an earlier
// message, HTML parts that repeat the text part, and now and then a
// base64 "attachment" of random bytes, which compresses as badly as real
// (already compressed) attachments do.
type gen struct {
	r      *rand.Rand
	words  []string
	zipf   *rand.Zipf
	n      int
	bodies [][]byte // recent bodies, for replies to quote
}

const vocabulary = "the of and to in a is that for it as was with be by on not he this are or his from at which but have an they you were her all she there would their we him been has when who will more no if out so said what up its about into than them can only other new some could time these two may then do first any my now such like our over man me even most made after also did many before must through back years where much your way well down should because each just those people how too little state good very make world still own see men work long get here between both life being under never day same another know while last might us great old year off come since against go came right used take three meeting village kiosk water school market price tomorrow please thanks regards attached report field clinic bus driver schedule payment account mobile network link message send receive weather rain harvest seed family health doctor teacher children lesson exam result office form copy letter"

func newGen() *gen {
	r := rand.New(rand.NewSource(1))
	words := strings.Fields(vocabulary)
	return &gen{r: r, words: words, zipf: rand.NewZipf(r, 1.2, 3, uint64(len(words)-1))}
}

var people = []string{"alice", "bob", "carol", "dan", "erin", "frank", "grace", "heidi", "ivan", "judy"}
var domains = []string{"example.org", "example.net", "kiosk.example", "mail.example.com"}

func (g *gen) addr() string {
	return people[g.r.Intn(len(people))] + "@" + domains[g.r.Intn(len(domains))]
}

func (g *gen) text(size int) []byte {
	var b bytes.Buffer
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
	return b.Bytes()
}

func (g *gen) b64(n int) []byte {
	raw := make([]byte, n)
	g.r.Read(raw)
	enc := make([]byte, 4*((len(raw)+2)/3))
	encodeBase64(enc, raw)
	var b bytes.Buffer
	for len(enc) > 76 {
		b.Write(enc[:76])
		b.WriteByte('\n')
		enc = enc[76:]
	}
	b.Write(enc)
	b.WriteByte('\n')
	return b.Bytes()
}

// message returns one message and its envelope sender.
func (g *gen) message() ([]byte, string) {
	g.n++
	var b bytes.Buffer
	from := g.addr()
	t := time.Unix(1700000000+int64(g.n)*37, 0).UTC()
	for i := 0; i < 3; i++ {
		fmt.Fprintf(&b, "Received: from mx%d.%s (mx%d.%s [192.0.2.%d])\n\tby proxy.example with ESMTP id %08x\n\tfor <%s>; %s\n",
			g.r.Intn(9), domains[g.r.Intn(4)], g.r.Intn(9), domains[g.r.Intn(4)], g.r.Intn(250), g.r.Uint32(), g.addr(), t.Format(time.RFC1123Z))
	}
	fmt.Fprintf(&b, "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=%s; s=mail;\n\th=from:to:subject:date:message-id; bh=%s\tb=%s", domains[g.r.Intn(4)], g.b64(32), g.b64(192))
	subject := g.words[g.zipf.Uint64()] + " " + g.words[g.zipf.Uint64()] + " " + g.words[g.zipf.Uint64()]
	body := g.text(300 + int(g.r.ExpFloat64()*1500))
	if len(g.bodies) > 0 && g.r.Intn(10) < 4 {
		old := g.bodies[g.r.Intn(len(g.bodies))]
		subject = "Re: " + subject
		var q bytes.Buffer
		q.Write(body)
		q.WriteString("\nOn an earlier day someone wrote:\n")
		for _, l := range bytes.SplitAfter(old, []byte("\n")) {
			if len(l) > 0 {
				q.WriteString("> ")
				q.Write(l)
			}
		}
		body = q.Bytes()
	}
	if len(g.bodies) < 500 {
		g.bodies = append(g.bodies, body)
	} else {
		g.bodies[g.r.Intn(len(g.bodies))] = body
	}
	fmt.Fprintf(&b, "From: %s\nTo: %s\nSubject: %s\nDate: %s\nMessage-ID: <%d.%x@%s>\nMIME-Version: 1.0\n",
		from, g.addr(), subject, t.Format(time.RFC1123Z), g.n, g.r.Uint64(), domains[g.r.Intn(4)])
	fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\n\n--b%d\nContent-Type: text/plain; charset=utf-8\n\n", g.n, g.n)
	b.Write(body)
	if g.r.Intn(3) == 0 {
		fmt.Fprintf(&b, "\n--b%d\nContent-Type: text/html; charset=utf-8\n\n<html><body>\n", g.n)
		for _, p := range bytes.Split(body, []byte("\n")) {
			fmt.Fprintf(&b, "<p style=\"margin:0\">%s</p>\n", p)
		}
		b.WriteString("</body></html>\n")
	}
	if g.r.Intn(20) == 0 {
		fmt.Fprintf(&b, "\n--b%d\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n", g.n)
		b.Write(g.b64(2000 + g.r.Intn(30000)))
	}
	fmt.Fprintf(&b, "\n--b%d--\n", g.n)
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
