package unpackcmd

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"omail/lib/bundle"
	"omail/lib/bundle/bundletest"
	"omail/lib/home"
	"omail/lib/qexit"
)

func TestUsage(t *testing.T) {
	var log bytes.Buffer
	for _, args := range [][]string{{"omail-unpack"}, {"omail-unpack", "client", "x"}, {"omail-unpack", "proxy"}, {"omail-unpack", "other", "a"}} {
		if code := Run(args, nil, nil, io.Discard, &log); code != qexit.Temp {
			t.Errorf("%q: exit %d", args, code)
		}
	}
}

// Each outcome of the client hook gets its exit code and its log line.
func TestExitCodes(t *testing.T) {
	h := t.TempDir()
	os.MkdirAll(filepath.Join(h, "control"), 0o755)
	os.MkdirAll(filepath.Join(h, "mail"), 0o755)
	os.WriteFile(filepath.Join(h, "control", "me"), []byte("kiosk.example\n"), 0o644)
	os.WriteFile(filepath.Join(h, "control", "mailspool"), []byte(filepath.Join(h, "mail")+"\n"), 0o644)
	env := home.Env{"OMAIL_HOME=" + h}
	file := filepath.Join(h, "in")
	var buf bytes.Buffer
	id := bundle.NewID()
	w, err := bundle.NewWriter(&buf, bundle.Zstd, bundle.Header{ID: id, Endpoint: "bob", Created: time.Unix(0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	w.Add("a@x", []string{"bob@k"}, 3, strings.NewReader("hi\n"))
	w.Close()
	good := buf.Bytes()
	future := bundletest.Future(t, good, 2000000001)

	for _, c := range []struct {
		name string
		data []byte // nil: no FILE
		code int
		line string
	}{
		{"no file", nil, qexit.Temp, "omail-unpack: open " + file + ": no such file or directory\n"},
		{"unknown dictionary", future, qexit.Temp, "omail-unpack: " + file + ": compressed with zstd dictionary 2000000001, which this omail does not have (a newer omail has it: upgrade this one; the file is kept)\n"},
		{"damaged", []byte("not a bundle"), qexit.Perm, "omail-unpack: " + file + ": damaged or unknown bundle: neither zstd nor gzip: nothing delivered, moved to "},
		{"good", good, qexit.OK, "omail-unpack: bundle " + id + ": endpoint bob: 1 messages delivered to bob\n"},
		{"again", good, qexit.OK, "omail-unpack: bundle " + id + ": " + file + ": unpacked before; removing this copy\n"},
	} {
		if c.data != nil {
			os.WriteFile(file, c.data, 0o644)
		}
		var log bytes.Buffer
		code := Run([]string{"omail-unpack", "client", "bob", file}, env, nil, io.Discard, &log)
		if code != c.code || !strings.Contains(log.String(), c.line) {
			t.Errorf("%s: exit %d, log %q; want %d and %q", c.name, code, log.String(), c.code, c.line)
		}
		if _, err := os.Stat(file); c.code == qexit.Temp && c.data != nil && err != nil {
			t.Errorf("%s: FILE not kept: %v", c.name, err)
		}
		if q, _ := os.ReadDir(filepath.Join(h, "quarantine")); c.name == "unknown dictionary" && len(q) > 0 {
			t.Errorf("%s: quarantined", c.name)
		}
	}
}
