// Command dictsize measures what the bundle dictionary saves where it
// matters most, in small bundles: the odd-numbered messages of an mbox
// (bench/corpus; bench/dict trains on the even ones), packed k at a time
// into signed bundles by lib/bundle as omail-pack writes them, against
// `gzip -6` of the same k messages. Usage:
//
//	go run ./bench/dictsize MBOX [K...]   (default K: 1 10)
//
// It prints one line per K and setting: bundles, total bytes, and the
// ratio to gzip -6. Not part of make test or make bench.
package main

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"omail/lib/bundle"
	"omail/lib/dict"
	"omail/lib/mbox"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: dictsize MBOX [K...]")
		os.Exit(100)
	}
	msgs, err := oddMessages(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "dictsize:", err)
		os.Exit(111)
	}
	ks := []int{1, 10}
	if len(os.Args) > 2 {
		ks = nil
		for _, a := range os.Args[2:] {
			k, err := strconv.Atoi(a)
			if err != nil || k < 1 {
				fmt.Fprintln(os.Stderr, "dictsize: bad K", a)
				os.Exit(100)
			}
			ks = append(ks, k)
		}
	}
	_, key, _ := ed25519.GenerateKey(nil)
	settings := []bundle.Options{
		{Compression: bundle.Zstd},
		{Compression: bundle.Zstd, Dict: dict.Current},
		{Compression: bundle.Best, Dict: dict.Current},
	}
	for _, k := range ks {
		var gz int64
		sizes := make([]int64, len(settings))
		n := 0
		for i := 0; i+k <= len(msgs); i += k {
			group := msgs[i : i+k]
			g, err := gzip6(group)
			if err != nil {
				fmt.Fprintln(os.Stderr, "dictsize: gzip:", err)
				os.Exit(111)
			}
			gz += g
			for j, o := range settings {
				sizes[j] += packed(o, key, group)
			}
			n++
		}
		for j, o := range settings {
			fmt.Printf("%2d messages a bundle, %4d bundles, %-4s dictionary %-10d: %9d bytes, %.3fx gzip -6 (%d)\n",
				k, n, o.Compression, o.Dict, sizes[j], float64(sizes[j])/float64(gz), gz)
		}
	}
}

// oddMessages reads the odd-numbered messages of an mbox (0-based, as
// bench/dict counts), quoting undone.
func oddMessages(path string) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := mbox.NewReader(bufio.NewReaderSize(f, 1<<20))
	var out [][]byte
	for i := 0; ; i++ {
		_, body, err := r.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(body)
		if err != nil {
			return nil, err
		}
		if i%2 == 1 {
			out = append(out, b)
		}
	}
}

// packed is the size of a signed bundle of msgs written with o.
func packed(o bundle.Options, key ed25519.PrivateKey, msgs [][]byte) int64 {
	var buf bytes.Buffer
	w, err := bundle.NewWriterOptions(&buf, o, bundle.Header{ID: bundle.NewID(), Endpoint: "kiosk1", Created: time.Now()})
	if err != nil {
		panic(err)
	}
	w.Sign(key)
	for _, m := range msgs {
		if err := w.Add("sender@example.org", []string{"user@kiosk1.example"}, int64(len(m)), bytes.NewReader(m)); err != nil {
			panic(err)
		}
	}
	if err := w.Close(); err != nil {
		panic(err)
	}
	return int64(buf.Len())
}

// gzip6 is the size of `gzip -6` of the messages, one after another.
func gzip6(msgs [][]byte) (int64, error) {
	cmd := exec.Command("gzip", "-6", "-c")
	cmd.Stdin = strings.NewReader(string(bytes.Join(msgs, nil)))
	out, err := cmd.Output()
	return int64(len(out)), err
}
