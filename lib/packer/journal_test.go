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
		entries: []string{"1.2.3.4", "1.2.3.4-2", "copy 1", "a\"b\nc"},
		stamps:  map[string]string{"1.2.3.4": "77.1.5", "1.2.3.4-2": "78.1.6", "copy 1": "79.1.7", "a\"b\nc": "80.1.8"},
		mboxLen: 712, mboxSum: "ab",
		tmpDir: &dirID{2049, 1 << 40, 1796177000123456789, 1322644278},
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
	// An older omail's journal, its entry names unquoted, still reads.
	os.WriteFile(p, []byte("bundle a \"/t\" \"/u\"\nentry 1.2.3.4 77.1.5\nend\n"), 0o644)
	if got, err := readJournal(p); err != nil || len(got.entries) != 1 || got.entries[0] != "1.2.3.4" || got.stamps["1.2.3.4"] != "77.1.5" {
		t.Errorf("an unquoted journal: %+v, %v", got, err)
	}
	// A journal of an earlier build names .omail-tmp/ without its birth.
	os.WriteFile(p, []byte("bundle a \"/t\" \"/u\"\ntmpdir 1 2\nend\n"), 0o644)
	if got, err := readJournal(p); err != nil || got.tmpDir == nil || *got.tmpDir != (dirID{1, 2, 0, 0}) {
		t.Errorf("a tmpdir line without a birth time: %+v, %v", got, err)
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
		"bundle a \"/t\" \"/u\"\nentry \"1 5\nend\n",     // a quote not closed
		"bundle a \"/t\" \"/u\"\nentry \"a/b\" 5\nend\n", // not a name in the outbox
		"bundle a \"/t\" \"/u\"\nentry \".journal\" 5\nend\n",
		"bundle a \"/t\" \"/u\"\nentry \"1\" 5 6\nend\n",
		"bundle a \"/t\" \"/u\"\ntmpdir 1\nend\n",
		"bundle a \"/t\" \"/u\"\ntmpdir 1 x\nend\n",
		"bundle a \"/t\" \"/u\"\ntmpdir 1  2\nend\n",
		"bundle a \"/t\" \"/u\"\ntmpdir -1 2\nend\n",
		"bundle a \"/t\" \"/u\"\ntmpdir 1 2\ntmpdir 1 2\nend\n",
		"bundle a \"/t\" \"/u\"\ntmpdir 1 2 3 4 5\nend\n",
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
	f.Add([]byte("bundle a \"/t/a\" \"/u/a\"\ntmpdir 2049 131\nend\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "j")
		os.WriteFile(p, data, 0o644)
		j, err := readJournal(p)
		if err == nil && j == nil {
			t.Fatal("nil journal without an error")
		}
		if err != nil {
			return
		}
		// What it read, written again, reads back the same.
		os.WriteFile(p, j.marshal(), 0o644)
		if again, err := readJournal(p); err != nil || !reflect.DeepEqual(again, j) {
			t.Fatalf("%q read as %+v, written and read again as %+v, %v", data, j, again, err)
		}
	})
}
