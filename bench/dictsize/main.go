// Command dictsize measures bundle bytes where the link pays for them:
// the odd-numbered messages of an mbox (bench/corpus; bench/dict trains
// on the even ones), packed k at a time (or up to 8 MiB of messages a
// bundle, as omail-pack's default bundlemax fills them: K "8M") into
// signed bundles by lib/bundle as omail-pack writes them, against
// `gzip -6` and `zstd -19 --long=27` of the same k messages. Usage:
//
//	go run ./bench/dictsize [-every N] [-match TEXT] MBOX [K...]   (default K: 1 10 100 8M)
//
// It prints a markdown table: bytes per delivered message and the
// ratio to gzip -6, per K and setting. Not part of make test or make
// bench: the best settings start the zstd program at level 19 for
// every bundle, a fraction of a second each, so K 1 takes an hour;
// -every N packs only every Nth bundle of each K (a sample); -match TEXT
// packs only the settings whose name holds TEXT ("format 3").
package main

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"omail/lib/bundle"
	"omail/lib/dict"
	"omail/lib/mbox"
)

// setting is one way of packing, as the control files choose it.
type setting struct {
	name string
	o    bundle.Options
}

var allSettings = []setting{
	{"zstd (default)", bundle.Options{Compression: bundle.Zstd}},
	{"best", bundle.Options{Compression: bundle.Best}},
	{"zstd, dict", bundle.Options{Compression: bundle.Zstd, Dict: dict.Current}},
	{"best, dict", bundle.Options{Compression: bundle.Best, Dict: dict.Current}},
	{"zstd, format 3", bundle.Options{Compression: bundle.Zstd, Compact: true}},
	{"zstd, dict, format 3", bundle.Options{Compression: bundle.Zstd, Dict: dict.Current, Compact: true}},
	{"best, dict, format 3", bundle.Options{Compression: bundle.Best, Dict: dict.Current, Compact: true}},
}

// bundleMax is omail-pack's default bundlemax, for K "8M".
const bundleMax = 8 << 20

func main() {
	every := flag.Int("every", 1, "pack only every Nth bundle of each K")
	match := flag.String("match", "", "pack only the settings whose name holds this")
	flag.Parse()
	settings := slices.DeleteFunc(slices.Clone(allSettings), func(s setting) bool { return !strings.Contains(s.name, *match) })
	args := flag.Args()
	if len(args) < 1 || *every < 1 {
		fmt.Fprintln(os.Stderr, "usage: dictsize [-every N] [-match TEXT] MBOX [K...]")
		os.Exit(100)
	}
	msgs, err := oddMessages(args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, "dictsize:", err)
		os.Exit(111)
	}
	ks := []string{"1", "10", "100", "8M"}
	if len(args) > 1 {
		ks = args[1:]
	}
	_, key, _ := ed25519.GenerateKey(nil)
	fmt.Printf("%d messages, %d bytes; every %d bundle(s) of each size packed. Bytes per message (ratio to gzip -6 of the same messages):\n\n", len(msgs), total(msgs), *every)
	fmt.Printf("| messages a bundle | bundles | gzip -6 | zstd -19 --long=27 |")
	for _, st := range settings {
		fmt.Printf(" %s |", st.name)
	}
	fmt.Printf("\n|---|---|---|---|%s\n", repeat("---|", len(settings)))
	for _, k := range ks {
		groups, err := group(msgs, k)
		if err != nil {
			fmt.Fprintln(os.Stderr, "dictsize:", err)
			os.Exit(100)
		}
		var gz, zs int64
		sizes := make([]int64, len(settings))
		n := 0
		for i, g := range groups {
			if i%*every != 0 {
				continue
			}
			n += len(g)
			gz += command(g, "gzip", "-6", "-c")
			zs += command(g, "zstd", "-19", "--long=27", "-T1", "-q", "-c")
			for j, st := range settings {
				sizes[j] += packed(st.o, key, g)
			}
		}
		per := func(b int64) string { return fmt.Sprintf("%.0f (%.3f)", float64(b)/float64(n), float64(b)/float64(gz)) }
		fmt.Printf("| %s | %d | %.0f | %s |", k, (len(groups)+*every-1) / *every, float64(gz)/float64(n), per(zs))
		for j := range settings {
			fmt.Printf(" %s |", per(sizes[j]))
		}
		fmt.Println()
	}
}

// group cuts msgs into bundles of k messages (the rest left out), or
// for "8M" into bundles of at most bundleMax message bytes (a bigger
// message alone), as omail-pack does.
func group(msgs [][]byte, k string) ([][][]byte, error) {
	var out [][][]byte
	if k == "8M" {
		var cur [][]byte
		size := 0
		for _, m := range msgs {
			if len(cur) > 0 && size+len(m) > bundleMax {
				out, cur, size = append(out, cur), nil, 0
			}
			cur, size = append(cur, m), size+len(m)
		}
		return append(out, cur), nil
	}
	n, err := strconv.Atoi(k)
	if err != nil || n < 1 {
		return nil, fmt.Errorf("bad K %q", k)
	}
	for i := 0; i+n <= len(msgs); i += n {
		out = append(out, msgs[i:i+n])
	}
	return out, nil
}

func total(msgs [][]byte) (n int) {
	for _, m := range msgs {
		n += len(m)
	}
	return n
}

func repeat(s string, n int) string {
	var b bytes.Buffer
	for range n {
		b.WriteString(s)
	}
	return b.String()
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

// packed is the size of a signed bundle of msgs written with o (format
// 3: its end frame names the key by its 4-byte id), with the size hint
// omail-pack gives.
func packed(o bundle.Options, key ed25519.PrivateKey, msgs [][]byte) int64 {
	for _, m := range msgs {
		o.SizeHint += int64(len(m))
	}
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

// command is the size of what a compressor program writes for the
// messages, one after another, in a file it is given (so that it knows
// the size: zstd --long=27 sizes its window to a small file, not to
// 128 MiB).
func command(msgs [][]byte, name string, args ...string) int64 {
	f, err := os.CreateTemp("", "dictsize-")
	if err == nil {
		defer os.Remove(f.Name())
		_, err = f.Write(bytes.Join(msgs, nil))
		if err2 := f.Close(); err == nil {
			err = err2
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dictsize:", err)
		os.Exit(111)
	}
	out, err := exec.Command(name, append(args, f.Name())...).Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "dictsize:", name, err)
		os.Exit(111)
	}
	return int64(len(out))
}
