package packer

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestJournalRoundTrip(t *testing.T) {
	j := &journal{
		bundles: []pending{{"0123456789abcdef0123456789abcdef", "/o c/k/mail/.omail-tmp/0123456789abcdef0123456789abcdef", "/o c/k/mail/upload/omail-0123456789abcdef0123456789abcdef.zst"}},
		entries: []string{"1.2.3.4", "1.2.3.4-2"},
		stamps:  map[string]string{"1.2.3.4": "77.1.5", "1.2.3.4-2": "78.1.6"},
		mboxLen: 712, mboxSum: "ab",
	}
	p := filepath.Join(t.TempDir(), "j")
	os.WriteFile(p, j.marshal(), 0o644)
	got, err := readJournal(p)
	if err != nil || !reflect.DeepEqual(got, j) {
		t.Errorf("got %+v, %v", got, err)
	}
	os.WriteFile(p, j.marshal()[:20], 0o644)
	if _, err := readJournal(p); err == nil {
		t.Error("a journal without its end line was accepted")
	}
	// A line not understood, or a journal that removes mail without a
	// bundle, is refused: it decides what is deleted.
	for _, bad := range []string{
		"bundle a /t/a /u/a\nentry 1 5\nend\n",   // unquoted paths
		"bundle a \"/t\" \"/u\"\nentry 1\nend\n", // no stamp
		"bundle a \"/t a\" \"/u\"\nentri 1\nend\n",
		"entry 1 5\nend\n",
		"mbox 10 ab\nend\n",
		"bundle a \"/t\" \"/u\"\nend\nentry 1 5\n",
	} {
		os.WriteFile(p, []byte(bad), 0o644)
		if _, err := readJournal(p); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

// FuzzJournal: the journal parser never panics, and accepts only
// journals with their end line.
func FuzzJournal(f *testing.F) {
	f.Add([]byte("bundle a \"/t/a\" \"/u/a\"\nentry 1 42\nend\n"))
	f.Add([]byte("mbox 10 ab\nend\n"))
	f.Add([]byte("bundle a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "j")
		os.WriteFile(p, data, 0o644)
		j, err := readJournal(p)
		if err == nil && j == nil {
			t.Fatal("nil journal without an error")
		}
	})
}
