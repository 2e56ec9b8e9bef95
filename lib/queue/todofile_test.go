package queue

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"omail/lib/envelope"
)

func commitOne(t *testing.T, q *Queue, msg string) string {
	t.Helper()
	id, err := q.Enqueue(strings.NewReader(msg), &envelope.Envelope{Sender: "a@b", Rcpts: []string{"c@d"}})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestFooterRoundTrip(t *testing.T) {
	state := []byte("V1\x00Q1\x00F\x00RT 0 0 c@d\x00.\x00")
	b := appendFooter(nil, 1234, int64(len(state)))
	if len(b) != footerLen {
		t.Fatalf("footer is %d bytes, want %d", len(b), footerLen)
	}
	m, s, ok := parseFooter(b, 1234+int64(len(state))+int64(footerLen))
	if !ok || m != 1234 || s != int64(len(state)) {
		t.Fatalf("parseFooter = %d %d %v", m, s, ok)
	}
	if _, _, ok := parseFooter(b, 1234+int64(len(state))+int64(footerLen)+1); ok {
		t.Fatal("a footer that disagrees with the file's size was accepted")
	}
	for _, bad := range []string{"OMQ2000000000000000A0000000a\n", "OMQ2-0000000000000010000000a\n", "OMQ30000000000000001000000001\n"} {
		if _, _, ok := parseFooter([]byte(bad), 100); ok {
			t.Errorf("parseFooter accepted %q", bad)
		}
	}
}

// A message whose own last line looks like a footer is still read by
// the footer the commit wrote after it.
func TestMessageEndingLikeAFooter(t *testing.T) {
	q := newQueue(t)
	msg := "Subject: x\n\nOMQ20000000000000001000000ff\n"
	id := commitOne(t, q, msg)
	if got := unfold(t, q, id); got != msg {
		t.Fatalf("message = %q", got)
	}
}

func TestUnfoldAgainAfterCrash(t *testing.T) {
	q := newQueue(t)
	id := commitOne(t, q, "Subject: x\n\nbody\n")
	if ok, err := q.LinkMessage(id); !ok || err != nil {
		t.Fatalf("LinkMessage = %v %v", ok, err)
	}
	// A second deliverer links too: same file, no error.
	if ok, err := q.LinkMessage(id); !ok || err != nil {
		t.Fatalf("second LinkMessage = %v %v", ok, err)
	}
	data, msgLen, err := q.ReadTodo(id)
	if err != nil {
		t.Fatal(err)
	}
	st, err := ParseState(id, data)
	if err != nil {
		t.Fatal(err)
	}
	st.Dir = DirTodo
	st.MessageLen = msgLen
	// The crash came after info/ was written, before the cut.
	if err := q.SaveState(st); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(q.Path(DirMess, id))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, _ := os.ReadFile(q.Path(DirInfo, id))
	st2, err := ParseState(id, info)
	if err != nil || st2.MessageLen != msgLen {
		t.Fatalf("info/ state %+v %v", st2, err)
	}
	for i := 0; i < 2; i++ {
		if err := q.Trim(f, st2); err != nil {
			t.Fatal(err)
		}
	}
	if b, _ := os.ReadFile(q.Path(DirMess, id)); string(b) != "Subject: x\n\nbody\n" {
		t.Fatalf("after Trim: %q", b)
	}
	// A message file shorter than its state says is damage.
	os.Truncate(q.Path(DirMess, id), 3)
	if err := q.Trim(f, st2); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Trim of a short file: %v", err)
	}
}

func TestLinkMessageRefuses(t *testing.T) {
	q := newQueue(t)
	// An older envelope-only todo/ file whose message is missing: not
	// linked (it would make the envelope a message).
	os.WriteFile(q.Path(DirTodo, "1.1.1.1"), []byte("V1\x00Q1\x00F\x00RT 0 0 c@d\x00.\x00"), 0o640)
	if ok, err := q.LinkMessage("1.1.1.1"); ok || err != nil {
		t.Fatalf("older envelope linked: %v %v", ok, err)
	}
	if _, err := os.Stat(q.Path(DirMess, "1.1.1.1")); err == nil {
		t.Fatal("mess/ entry made for an envelope-only file")
	}
	// Nothing there: finished meanwhile.
	if ok, err := q.LinkMessage("1.1.1.2"); ok || err != nil {
		t.Fatalf("missing entry: %v %v", ok, err)
	}
	// A stranger already holds the name in mess/.
	id := commitOne(t, q, "Subject: x\n\nbody\n")
	os.WriteFile(q.Path(DirMess, id), []byte("stranger"), 0o640)
	if ok, err := q.LinkMessage(id); ok || err == nil {
		t.Fatalf("linked over a stranger: %v %v", ok, err)
	}
}

func TestReadTodoDamage(t *testing.T) {
	q := newQueue(t)
	id := commitOne(t, q, "Subject: x\n\nbody\n")
	p := q.Path(DirTodo, id)
	b, _ := os.ReadFile(p)
	os.WriteFile(p, b[1:], 0o640) // the sizes no longer add up
	if _, _, err := q.ReadTodo(id); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("ReadTodo of a damaged entry: %v", err)
	}
	if _, _, err := q.ReadTodo("1.2.3.4"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("ReadTodo of nothing: %v", err)
	}
}

func TestEmptyMessageRefused(t *testing.T) {
	q := newQueue(t)
	if _, err := q.Enqueue(strings.NewReader(""), &envelope.Envelope{Rcpts: []string{"c@d"}}); err == nil {
		t.Fatal("an empty message was committed")
	}
	for _, d := range []string{DirTmp, DirTodo} {
		if es, _ := os.ReadDir(filepath.Join(q.Dir, d)); len(es) != 0 {
			t.Errorf("%s holds %v", d, es)
		}
	}
}

// FuzzReadTodo feeds arbitrary bytes as a todo/ file: ReadTodo either
// refuses them or returns a state and a message length inside the file.
func FuzzReadTodo(f *testing.F) {
	state := []byte("V1\x00Q1\x00F\x00RT 0 0 c@d\x00.\x00")
	good := append([]byte("Subject: x\n\nbody\n"), state...)
	good = appendFooter(good, 17, int64(len(state)))
	f.Add(good)
	f.Add(state)
	f.Add([]byte("OMQ2000000000000000100000001\n"))
	f.Add([]byte{})
	dir := f.TempDir()
	q := &Queue{Dir: dir}
	os.MkdirAll(filepath.Join(dir, DirTodo), 0o755)
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(q.Path(DirTodo, "1.1.1.1"), b, 0o600); err != nil {
			t.Fatal(err)
		}
		data, msgLen, err := q.ReadTodo("1.1.1.1")
		if err != nil {
			return
		}
		if msgLen >= 0 && (msgLen < 1 || msgLen+int64(len(data))+int64(footerLen) != int64(len(b))) {
			t.Fatalf("msgLen %d and %d state bytes in a %d-byte file", msgLen, len(data), len(b))
		}
		if msgLen < 0 && len(data) != len(b) {
			t.Fatalf("older file read as %d of %d bytes", len(data), len(b))
		}
	})
}

// LinkLocked makes mess/ID once; ReadTodoFile reads what ReadTodo reads,
// from the open file, for both layouts.
func TestLinkLockedAndReadTodoFile(t *testing.T) {
	q := newQueue(t)
	id := commitOne(t, q, "Subject: x\n\nbody\n")
	f, err := os.Open(q.Path(DirTodo, id))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i, wantMade := range []bool{true, false} {
		ok, made, err := q.LinkLocked(f, id)
		if !ok || made != wantMade || err != nil {
			t.Fatalf("LinkLocked %d = %v %v %v, want made %v", i+1, ok, made, err, wantMade)
		}
	}
	want, wantLen, err := q.ReadTodo(id)
	if err != nil {
		t.Fatal(err)
	}
	got, gotLen, err := ReadTodoFile(f)
	if err != nil || string(got) != string(want) || gotLen != wantLen || gotLen != int64(len("Subject: x\n\nbody\n")) {
		t.Fatalf("ReadTodoFile = %q %d %v, ReadTodo %q %d", got, gotLen, err, want, wantLen)
	}
	old := filepath.Join(t.TempDir(), "old")
	env := "V1\x00Q1\x00Fa@b\x00RT 0 0 c@d\x00.\x00"
	os.WriteFile(old, []byte(env), 0o600)
	g, err := os.Open(old)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if got, n, err := ReadTodoFile(g); string(got) != env || n != -1 || err != nil {
		t.Fatalf("ReadTodoFile of an envelope-only file = %q %d %v", got, n, err)
	}
	// Damage is ErrCorrupt, as from ReadTodo.
	os.WriteFile(old, []byte("Subject: x\n\nOMQ2zzzzzzzzzzzzzzzzzzzzzzzz\n"), 0o600)
	if _, _, err := ReadTodoFile(g); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("ReadTodoFile of a bad footer: %v, want ErrCorrupt", err)
	}
}
