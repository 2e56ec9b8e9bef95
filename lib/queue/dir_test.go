package queue

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestIDsListsAndSorts(t *testing.T) {
	q := newQueue(t)
	want := []string{"9.000000001.5.1", "10.000000000.1.1", "10.000000000.1.2", "10.000000000.1.10", "1000.1.1.1"}
	for _, name := range append([]string{".10.000000000.1.3123", "stranger", "1.2.3"}, want...) {
		os.WriteFile(q.Path(DirInfo, name), nil, 0o640)
	}
	got, err := q.IDs(DirInfo)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("IDs = %v, %v; want %v", got, err, want)
	}
	if _, err := q.IDs("nonesuch"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("IDs of a missing directory: %v", err)
	}
	// Many names: more than one getdents call's worth.
	q2 := newQueue(t)
	var many []string
	for i := 0; i < 7000; i++ {
		id := fmt.Sprintf("1700000000.%09d.%d.%d", rand.Intn(1e9), rand.Intn(5), i)
		many = append(many, id)
		os.WriteFile(q2.Path(DirTodo, id), nil, 0o640)
	}
	got, err = q2.IDs(DirTodo)
	slices.SortFunc(many, func(a, b string) int {
		if IDLess(a, b) {
			return -1
		}
		if IDLess(b, a) {
			return 1
		}
		return 0
	})
	if err != nil || !reflect.DeepEqual(got, many) {
		t.Errorf("IDs of 7000: %d, %v", len(got), err)
	}
}

func TestIDLessFields(t *testing.T) {
	for _, c := range []struct {
		a, b string
		less bool
	}{
		{"1.2.3.4", "1.2.3.5", true},
		{"1.2.3.10", "1.2.3.9", false},
		{"1.002.3.4", "1.2.3.4", false},
		{"1.2.3.4", "1.002.3.4", false},
		{"1.2.3", "1.2.3.0", true},
		{"1.2.3.0", "1.2.3", false},
		{"99999999999999999999999.1.1.1", "100000000000000000000000.1.1.1", true},
	} {
		if IDLess(c.a, c.b) != c.less {
			t.Errorf("IDLess(%q, %q) = %v", c.a, c.b, !c.less)
		}
	}
}

func TestReaderReadsWholeFiles(t *testing.T) {
	q := newQueue(t)
	big := &State{ID: "1.1.1.1", Queued: 1, Sender: "s@x"}
	for i := 0; i < 500; i++ {
		big.Rcpts = append(big.Rcpts, Rcpt{Addr: fmt.Sprintf("user%d@example.org", i), Status: Todo, LastError: strings.Repeat("e", 40)})
	}
	files := map[string][]byte{
		"1.1.1.1": big.Marshal(),
		"1.1.1.2": []byte("V1\x00Q1\x00Fs\x00RT 0 0 a@b\x00.\x00"),
		"1.1.1.3": []byte("V1\x00Q1\x00Fs\x00RT 0 0 a@b\x00.\x00trailing"),
		"1.1.1.4": nil,
	}
	for id, b := range files {
		os.WriteFile(q.Path(DirInfo, id), b, 0o640)
	}
	os.WriteFile(q.Path(DirMess, "1.1.1.2"), []byte("12345"), 0o640)
	r := q.NewReader()
	defer r.Close()
	for round := 0; round < 2; round++ {
		for id, want := range files {
			got, err := r.ReadState(DirInfo, id)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s: %d bytes, %v; want %d", id, len(got), err, len(want))
			}
		}
	}
	if _, err := r.ReadState(DirInfo, "9.9.9.9"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if n, err := r.Size("1.1.1.2"); n != 5 || err != nil {
		t.Errorf("Size = %d, %v", n, err)
	}
	if _, err := r.Size("9.9.9.9"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Size of a missing file: %v", err)
	}
}

func TestNextTryOf(t *testing.T) {
	st := &State{Queued: 1, Sender: "s@x", Rcpts: []Rcpt{
		{Addr: "a@b", Status: Done, NextTry: 5},
		{Addr: "c@d", Status: Todo, Attempts: 2, NextTry: 1700000900, LastError: "RT 0 1 x@y"},
		{Addr: "e@f", Status: Todo, Attempts: 1, NextTry: 1700000600},
		{Addr: "g@h", Status: Failed},
	}}
	if n, ok := NextTryOf(st.Marshal()); n != 1700000600 || !ok {
		t.Errorf("NextTryOf = %d, %v", n, ok)
	}
	st.Rcpts = st.Rcpts[:1]
	if _, ok := NextTryOf(st.Marshal()); ok {
		t.Error("no Todo recipient, but ok")
	}
	for _, bad := range []string{"", "V1\x00Q1\x00Fs\x00RT 0 0 a@b\x00", "V1\x00Q1\x00Fs\x00RT 0 x a@b\x00.\x00", "V1\x00Q1\x00Fs\x00RT 0\x00.\x00"} {
		if _, ok := NextTryOf([]byte(bad)); ok {
			t.Errorf("NextTryOf(%q) ok", bad)
		}
	}
}

func TestReadAheadKeepsOrderAndStops(t *testing.T) {
	q := newQueue(t)
	for _, workers := range []int{1, 2, 4} {
		n, seen := 5000, 0
		ReadAhead(q, workers, n, func(r *Reader, i int) int { return i * 3 }, func(i, v int) bool {
			if i != seen || v != i*3 {
				t.Fatalf("workers %d: got (%d, %d) at %d", workers, i, v, seen)
			}
			seen++
			return true
		})
		if seen != n {
			t.Errorf("workers %d: %d of %d", workers, seen, n)
		}
		seen = 0
		ReadAhead(q, workers, n, func(r *Reader, i int) int { return i }, func(i, v int) bool {
			seen++
			return i < 1000
		})
		if seen != 1001 {
			t.Errorf("workers %d: use called %d times after stopping at 1000", workers, seen)
		}
	}
}

func TestListShowsTodoAndInfoOnce(t *testing.T) {
	q := newQueue(t)
	st := func(addr string, attempts int) []byte {
		return (&State{Queued: 1700000000, Sender: "s@x", Rcpts: []Rcpt{{Addr: addr, Status: Todo, Attempts: attempts, NextTry: 1700000065}}}).Marshal()
	}
	os.WriteFile(q.Path(DirTodo, "2.0.1.1"), st("new@x", 0), 0o640)
	os.WriteFile(q.Path(DirInfo, "1.0.1.1"), st("old@x", 2), 0o640)
	os.WriteFile(q.Path(DirTodo, "3.0.1.1"), st("both@x", 0), 0o640) // a crash between info/ and todo/
	os.WriteFile(q.Path(DirInfo, "3.0.1.1"), st("both@x", 1), 0o640)
	os.WriteFile(q.Path(DirInfo, "4.0.1.1"), []byte("damaged"), 0o640)
	os.WriteFile(q.Path(DirMess, "1.0.1.1"), []byte("0123456789"), 0o640)
	var out bytes.Buffer
	if err := q.List(&out); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"1.0.1.1  age 0s  10 bytes  from <s@x>",
		"    deferred <old@x>  2 attempt(s), next try in 1m",
		"2.0.1.1  age 0s  -1 bytes  from <s@x>",
		"    pending  <new@x>",
		"3.0.1.1  age 0s  -1 bytes  from <s@x>",
		"    deferred <both@x>  1 attempt(s), next try in 1m",
		"4.0.1.1  unreadable: corrupt queue file: not NUL-terminated",
		"4 message(s) in the queue",
	}
	if got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n"); !reflect.DeepEqual(got, want) {
		t.Errorf("listing:\n%s\nwant:\n%s", out.String(), strings.Join(want, "\n"))
	}
}

// NextTryOf agrees with ParseState on everything ParseState accepts.
func FuzzNextTryOf(f *testing.F) {
	f.Add((&State{Queued: 1, Sender: "s@x", Rcpts: []Rcpt{{Addr: "a@b", Status: Todo, NextTry: 7, LastError: "e"}, {Addr: "c@d", Status: Todo, NextTry: 3}}}).Marshal())
	f.Add([]byte("V1\x00Q0\x00F\x00RD 1 2 x@y\x00.\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := ParseState("id", data)
		if err != nil {
			return
		}
		n1, ok1 := st.NextTry()
		n2, ok2 := NextTryOf(data)
		if n1 != n2 || ok1 != ok2 {
			t.Fatalf("%q: ParseState says %d, %v; NextTryOf %d, %v", data, n1, ok1, n2, ok2)
		}
		// DueOf's fewest attempts of a Todo recipient agrees too (up to
		// the cap it puts on them).
		want := -1
		for _, r := range st.Rcpts {
			if r.Status == Todo && (want < 0 || r.Attempts < want) {
				want = min(r.Attempts, math.MaxInt32)
			}
		}
		if _, a, ok := DueOf(data); ok && a != want {
			t.Fatalf("%q: ParseState's fewest attempts %d, DueOf %d", data, want, a)
		}
	})
}

func TestNextTryOfNumbers(t *testing.T) {
	for _, c := range []struct {
		field string
		want  int64
		ok    bool
	}{
		{"+5", 5, true}, {"9223372036854775807", 9223372036854775807, true}, {"9223372036854775808", 0, false},
		{"99999999999999999999", 0, false}, {"", 0, false}, {"+", 0, false}, {"-1", 0, false}, {"0012", 12, true},
	} {
		n, ok := NextTryOf([]byte("V1\x00Q1\x00Fs\x00RT 0 " + c.field + " a@b\x00.\x00"))
		if n != c.want || ok != c.ok {
			t.Errorf("%q: %d, %v", c.field, n, ok)
		}
	}
}
