// Package ocmpkey is a home's Ed25519 signing key for OCMP bundles,
// control/ocmpkey, and the text form of public keys that ocmppeers lists
// and `omail-pack -keygen` prints: "ed25519:" and the 32 key bytes in
// standard base64.
//
// The key file holds one line, "ed25519-seed:" and the 32-byte seed in
// standard base64 (crypto/ed25519's NewKeyFromSeed makes the key from
// it). It is mode 600 and written once: Generate never replaces a key,
// since every peer that lists the old public key would then refuse this
// home's bundles.
package ocmpkey

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"omail/lib/safefile"
)

// File is the key's name in the control directory.
const File = "ocmpkey"

const (
	publicPrefix = "ed25519:"
	seedPrefix   = "ed25519-seed:"
)

// FormatPublic is the text form of a public key: "ed25519:BASE64".
func FormatPublic(pub ed25519.PublicKey) string {
	return publicPrefix + base64.StdEncoding.EncodeToString(pub)
}

// ParsePublic reads a public key in the form FormatPublic writes.
func ParsePublic(s string) (ed25519.PublicKey, error) {
	b64, ok := strings.CutPrefix(s, publicPrefix)
	if !ok {
		return nil, fmt.Errorf("%q is not a public key of the form ed25519:BASE64", trim(s))
	}
	b, err := decode(b64)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%q is not %d bytes in base64", trim(s), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}

// decode is strict standard base64. Go's decoder passes over CR and LF
// even in strict mode; a key holding one is damaged (or not what the
// admin sees), so it is refused, and a parsed key is always written the
// way it was read.
func decode(b64 string) ([]byte, error) {
	if strings.ContainsAny(b64, "\r\n") {
		return nil, errors.New("a line break inside the base64")
	}
	return base64.StdEncoding.Strict().DecodeString(b64)
}

// ParsePrivate reads the contents of a key file.
func ParsePrivate(data []byte) (ed25519.PrivateKey, error) {
	line, _, _ := strings.Cut(string(data), "\n")
	b64, ok := strings.CutPrefix(strings.TrimSpace(line), seedPrefix)
	if !ok {
		return nil, errors.New("not an ocmpkey (its line starts with " + seedPrefix + ")")
	}
	seed, err := decode(b64)
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("the seed is not %d bytes in base64", ed25519.SeedSize)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// format is a key file's contents.
func format(key ed25519.PrivateKey) []byte {
	return []byte(seedPrefix + base64.StdEncoding.EncodeToString(key.Seed()) + "\n")
}

// maxKeyFile bounds what is read of a key file: a key is one short line.
const maxKeyFile = 256

// Load reads the key file at path. A key that others than its owner may
// read is refused: whoever reads it can sign bundles as this home.
func Load(path string) (ed25519.PrivateKey, error) {
	data, err := safefile.ReadSecret(path, maxKeyFile)
	if err != nil {
		return nil, err
	}
	key, err := ParsePrivate(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return key, nil
}

// Generate makes the key file at path unless one is there, and returns
// the public key of the key at path and whether it was made now. The key
// appears whole or not at all: it is written to a temporary file, synced,
// and linked to path, which fails rather than replace a key made
// meanwhile by another run.
func Generate(path string) (ed25519.PublicKey, bool, error) {
	if key, err := Load(path); err == nil {
		return key.Public().(ed25519.PublicKey), false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, false, err
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".ocmpkey-")
	if err != nil {
		return nil, false, err
	}
	defer os.Remove(tmp.Name())
	err = tmp.Chmod(0o600)
	if err == nil {
		_, err = tmp.Write(format(key))
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, false, err
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, fs.ErrExist) {
		return Generate(path) // another run made one first: that is the key
	} else if err != nil {
		return nil, false, err
	}
	if err := safefile.SyncDir(dir); err != nil {
		return nil, false, err
	}
	return key.Public().(ed25519.PublicKey), true, nil
}

func trim(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}
