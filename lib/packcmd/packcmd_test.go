package packcmd

import (
	"bytes"
	"crypto/ed25519"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"omail/lib/dict"
	"omail/lib/home"
	"omail/lib/ocmpkey"
	"omail/lib/qexit"
)

func TestUsage(t *testing.T) {
	var log bytes.Buffer
	if code := Run([]string{"omail-pack", "-x"}, nil, nil, io.Discard, &log); code != qexit.Usage {
		t.Errorf("exit %d", code)
	}
	if log.String() != "omail-pack: usage: omail-pack [-watch | -keygen | -dict [ID]]\n" {
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
	// No signing key: nothing is packed unsigned.
	if code := Run([]string{"omail-pack"}, env, nil, io.Discard, &log); code != qexit.Temp ||
		!strings.Contains(log.String(), "run omail-pack -keygen once") {
		t.Errorf("without a key: exit %d: %s", code, log.String())
	}
	if code := Run([]string{"omail-pack", "-keygen"}, env, nil, io.Discard, io.Discard); code != qexit.OK {
		t.Fatalf("-keygen: exit %d", code)
	}
	log.Reset()
	if code := Run([]string{"omail-pack"}, env, nil, io.Discard, &log); code != qexit.OK {
		t.Errorf("exit %d: %s", code, log.String())
	}
	os.WriteFile(filepath.Join(h, "control", "bundlecompression"), []byte("lz4\n"), 0o644)
	log.Reset()
	if code := Run([]string{"omail-pack"}, env, nil, io.Discard, &log); code != qexit.Temp {
		t.Errorf("exit %d: %s", code, log.String())
	}
	if !strings.Contains(log.String(), "omail-pack: control file bundlecompression: \"lz4\" is not zstd, best or gzip\n") {
		t.Errorf("log %q", log.String())
	}
}

// -keygen makes the key once and prints its public key, the same every
// time.
func TestKeygen(t *testing.T) {
	h := t.TempDir()
	os.MkdirAll(filepath.Join(h, "control"), 0o755)
	env := home.Env{"OMAIL_HOME=" + h}
	var out1, out2, log bytes.Buffer
	if code := Run([]string{"omail-pack", "-keygen"}, env, nil, &out1, &log); code != qexit.OK {
		t.Fatalf("exit %d: %s", code, log.String())
	}
	if !strings.Contains(log.String(), "made the signing key") {
		t.Errorf("log %q", log.String())
	}
	key, err := ocmpkey.Load(filepath.Join(h, "control", "ocmpkey"))
	if err != nil {
		t.Fatal(err)
	}
	if want := ocmpkey.FormatPublic(key.Public().(ed25519.PublicKey)) + "\n"; out1.String() != want {
		t.Errorf("printed %q, want %q", out1.String(), want)
	}
	log.Reset()
	if code := Run([]string{"omail-pack", "-keygen"}, env, nil, &out2, &log); code != qexit.OK || out2.String() != out1.String() || log.Len() != 0 {
		t.Errorf("again: exit %d, %q, log %q", code, out2.String(), log.String())
	}
	os.RemoveAll(filepath.Join(h, "control"))
	if code := Run([]string{"omail-pack", "-keygen"}, env, nil, io.Discard, &log); code != qexit.Temp {
		t.Errorf("no control directory: exit %d", code)
	}
}

// -dict ID writes the embedded dictionary; -dict lists the ids.
func TestDict(t *testing.T) {
	var env home.Env
	var out, log bytes.Buffer
	id := strconv.FormatUint(uint64(dict.Current), 10)
	if code := Run([]string{"omail-pack", "-dict", id}, env, nil, &out, &log); code != qexit.OK {
		t.Fatalf("exit %d: %s", code, log.String())
	}
	if want, _ := dict.Get(dict.Current); !bytes.Equal(out.Bytes(), want) {
		t.Errorf("-dict %s wrote %d bytes, not the %d embedded", id, out.Len(), len(want))
	}
	out.Reset()
	if code := Run([]string{"omail-pack", "-dict"}, env, nil, &out, &log); code != qexit.OK || !strings.HasPrefix(out.String(), id+"\n") {
		t.Errorf("-dict: exit %d, %q", code, out.String())
	}
	for _, bad := range []string{"12345", "0", "none", "x"} {
		out.Reset()
		log.Reset()
		if code := Run([]string{"omail-pack", "-dict", bad}, env, nil, &out, &log); code != qexit.Usage || out.Len() != 0 || !strings.Contains(log.String(), "-dict") {
			t.Errorf("-dict %s: exit %d, %d bytes out, log %q", bad, code, out.Len(), log.String())
		}
	}
}
