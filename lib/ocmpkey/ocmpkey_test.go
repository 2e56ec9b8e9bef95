package ocmpkey

import (
	"bytes"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGenerate(t *testing.T) {
	path := filepath.Join(t.TempDir(), File)
	pub, made, err := Generate(path)
	if err != nil || !made || len(pub) != ed25519.PublicKeySize {
		t.Fatalf("Generate: %v %v %v", pub, made, err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	before, _ := os.ReadFile(path)
	again, made, err := Generate(path)
	if err != nil || made || !bytes.Equal(again, pub) {
		t.Errorf("second Generate: %v %v %v", again, made, err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("the key file was rewritten")
	}
	key, err := Load(path)
	if err != nil || !bytes.Equal(key.Public().(ed25519.PublicKey), pub) {
		t.Errorf("Load: %v", err)
	}
	if n, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".ocmpkey-*")); len(n) != 0 {
		t.Errorf("temporary files left: %v", n)
	}
}

func TestLoadRefuses(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, File)
	if _, err := Load(path); !os.IsNotExist(err) {
		t.Errorf("missing: %v", err)
	}
	Generate(path)
	os.Chmod(path, 0o640)
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("group-readable key: %v", err)
	}
	if _, _, err := Generate(path); err == nil {
		t.Error("Generate passed over a key it cannot use")
	}
	os.WriteFile(path, []byte("ed25519-seed:AAAA\n"), 0o600)
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("short seed: %v", err)
	}
}

func TestPublic(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(nil)
	s := FormatPublic(pub)
	if !strings.HasPrefix(s, "ed25519:") || len(s) != 8+44 {
		t.Errorf("FormatPublic: %q", s)
	}
	got, err := ParsePublic(s)
	if err != nil || !bytes.Equal(got, pub) {
		t.Errorf("ParsePublic(%q): %v %v", s, got, err)
	}
	for _, bad := range []string{"", "ed25519:", "rsa:" + s[8:], s[:len(s)-4], s + "AAAA", "ed25519:" + strings.Repeat("!", 44), strings.ToUpper(s[:8]) + s[8:]} {
		if _, err := ParsePublic(bad); err == nil {
			t.Errorf("ParsePublic(%q) accepted", bad)
		}
	}
}

func FuzzParsePrivate(f *testing.F) {
	_, key, _ := ed25519.GenerateKey(nil)
	f.Add(format(key))
	f.Add([]byte("ed25519-seed:\n"))
	f.Add([]byte("ed25519:AAAA"))
	f.Fuzz(func(t *testing.T, data []byte) {
		key, err := ParsePrivate(data)
		if err != nil {
			return
		}
		// A key that parses writes back to a file that parses to it.
		again, err := ParsePrivate(format(key))
		if err != nil || !key.Equal(again) {
			t.Fatalf("%q: round trip %v", data, err)
		}
	})
}

func FuzzParsePublic(f *testing.F) {
	pub, _, _ := ed25519.GenerateKey(nil)
	f.Add(FormatPublic(pub))
	f.Add("ed25519:")
	f.Add("ed25519:====")
	f.Fuzz(func(t *testing.T, s string) {
		pub, err := ParsePublic(s)
		if err != nil {
			return
		}
		if FormatPublic(pub) != s {
			t.Fatalf("%q parses to a key written %q", s, FormatPublic(pub))
		}
	})
}
