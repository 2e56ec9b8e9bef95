package mbox

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLines(t *testing.T) {
	long := "Received: " + strings.Repeat("x", scanBuf) + "From tail\n"
	data := "junk\nFrom a x\nFrom\n>From b\n" + long + "From c y\nlast"
	f, err := os.Open(writeFile(t, data))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []string
	err = Lines(f, 0, int64(len(data)), func(l []byte, begins bool) {
		s := string(l)
		if len(s) > 20 {
			s = fmt.Sprintf("%s...(%d)", s[:10], len(s))
		}
		got = append(got, fmt.Sprintf("%v:%q", begins, s))
	})
	want := []string{`false:"junk\n"`, `true:"From a x\n"`, `false:"From\n"`, `false:">From b\n"`,
		fmt.Sprintf(`false:"Received: ...(%d)"`, scanBuf), `true:"From c y\n"`, `false:"last"`}
	if err != nil || strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("got %v %v\nwant %v", got, err, want)
	}
	// A section: from the second line to the middle of the third.
	got = got[:0]
	Lines(f, 5, 16, func(l []byte, begins bool) { got = append(got, fmt.Sprintf("%v:%q", begins, l)) })
	if strings.Join(got, " ") != `true:"From a x\n" false:"Fr"` {
		t.Errorf("section: %v", got)
	}
}

// signatureOf is Signature of the file at path.
func signatureOf(path string, n int64) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return Signature(f, n)
}

func TestSignature(t *testing.T) {
	path := writeFile(t, strings.Repeat("a", 5000)+"tail")
	s1, err := signatureOf(path, 5000)
	if err != nil {
		t.Fatal(err)
	}
	if s2, _ := signatureOf(path, 5000); s2 != s1 {
		t.Errorf("two signatures of one prefix: %s %s", s1, s2)
	}
	if s2, _ := signatureOf(path, 4999); s2 == s1 {
		t.Error("another length, same signature")
	}
	// Rewritten in place just before n: another signature.
	f, _ := os.OpenFile(path, os.O_RDWR, 0)
	f.WriteAt([]byte("b"), 4990)
	f.Close()
	if s2, _ := signatureOf(path, 5000); s2 == s1 {
		t.Error("changed bytes, same signature")
	}
	// Replaced by another file with the same bytes (a reader's rewrite):
	// another inode, another signature.
	s1, _ = signatureOf(path, 5000)
	data, _ := os.ReadFile(path)
	os.Rename(path, path+".old") // kept: its inode number cannot come back
	os.WriteFile(path, data, 0o600)
	if s2, _ := signatureOf(path, 5000); s2 == s1 {
		t.Error("another file, same signature")
	}
	if _, err := signatureOf(filepath.Join(t.TempDir(), "none"), 0); err == nil {
		t.Error("no error for a missing mailbox")
	}
}

func writeFile(t *testing.T, data string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mbox")
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
