package packcmd

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"omail/lib/home"
	"omail/lib/qexit"
)

func TestUsage(t *testing.T) {
	var log bytes.Buffer
	if code := Run([]string{"omail-pack", "-x"}, nil, nil, io.Discard, &log); code != qexit.Usage {
		t.Errorf("exit %d", code)
	}
	if log.String() != "omail-pack: usage: omail-pack [-watch]\n" {
		t.Errorf("log %q", log.String())
	}
}

// One pass: 0 when it packed what there was, 111 when it met trouble
// (logged).
func TestOnePass(t *testing.T) {
	h := t.TempDir()
	os.MkdirAll(filepath.Join(h, "control"), 0o755)
	os.WriteFile(filepath.Join(h, "control", "ocmpdir"), []byte(filepath.Join(h, "ocmp")+"\n"), 0o644)
	env := home.Env{"OMAIL_HOME=" + h}
	var log bytes.Buffer
	if code := Run([]string{"omail-pack"}, env, nil, io.Discard, &log); code != qexit.OK {
		t.Errorf("exit %d: %s", code, log.String())
	}
	os.WriteFile(filepath.Join(h, "control", "bundlecompression"), []byte("lz4\n"), 0o644)
	log.Reset()
	if code := Run([]string{"omail-pack"}, env, nil, io.Discard, &log); code != qexit.Temp {
		t.Errorf("exit %d: %s", code, log.String())
	}
	if !strings.Contains(log.String(), "omail-pack: control file bundlecompression: \"lz4\" is neither zstd nor gzip\n") {
		t.Errorf("log %q", log.String())
	}
}
