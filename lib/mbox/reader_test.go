package mbox

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

func TestReader(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"From a x\nA\n\nFrom b y\nB\n", []string{"a:A\n", "b:B\n"}},
		{"From a x\nA\n\n\nFrom b y\n\nB", []string{"a:A\n\n", "b:\nB"}},
		{"From a x\n>>From z\n>Fromage\n", []string{"a:>From z\n>Fromage\n"}},
		{"From a x\n", []string{"a:"}},
		{"From <a@b> x\nq\n\n\n", []string{"a@b:q\n\n"}},
	} {
		m := NewReader(strings.NewReader(c.in))
		var got []string
		for {
			s, b, err := m.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(b)
			got = append(got, s+":"+string(body))
		}
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%q: got %q want %q", c.in, got, c.want)
		}
	}
}

// Input that does not start with a From_ line is ErrNotMbox, and stays
// so.
func TestReaderNotMbox(t *testing.T) {
	for _, in := range []string{"Subject: x\n\nFrom a\n", "", "From " + strings.Repeat("x", 70<<10) + "\n"} {
		m := NewReader(strings.NewReader(in))
		for i := 0; i < 2; i++ {
			if _, _, err := m.Next(); !errors.Is(err, ErrNotMbox) {
				t.Errorf("%.20q: Next %d = %v", in, i, err)
			}
		}
	}
}

// FuzzReader: the mbox splitter never panics, never returns more body
// bytes than it was given, and finds no more messages than there are
// lines starting "From ".
func FuzzReader(f *testing.F) {
	f.Add([]byte("From a x\nA\n\nFrom b y\nB\n"))
	f.Add([]byte("From a x\n>From z\n\n\n>>From q\nFrom b\n"))
	f.Add([]byte("not an mbox\n"))
	f.Add([]byte("From a x\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m := NewReader(bytes.NewReader(data))
		total, n := 0, 0
		froms := bytes.Count(data, []byte("\nFrom "))
		if bytes.HasPrefix(data, []byte("From ")) {
			froms++
		}
		for {
			_, body, err := m.Next()
			if err != nil {
				return
			}
			if n++; n > froms {
				t.Fatalf("%d messages from %d From_ lines", n, froms)
			}
			b, err := io.ReadAll(body)
			if err != nil {
				return
			}
			total += len(b)
			if total > len(data) {
				t.Fatalf("%d body bytes from %d input bytes", total, len(data))
			}
		}
	})
}
