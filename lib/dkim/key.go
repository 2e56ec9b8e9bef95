package dkim

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"omail/lib/safefile"
)

// MinRSABits is the smallest RSA key used: RFC 8301 forbids signing
// with less than 1024 bits and receivers increasingly distrust less
// than 2048.
const MinRSABits = 2048

// maxKeyFile bounds what is read of a key file: an RSA 8192 key in PEM
// is under 7 KiB.
const maxKeyFile = 64 << 10

// ReadKey reads a private key file: PEM, PKCS#8 ("PRIVATE KEY", RSA or
// Ed25519) or PKCS#1 ("RSA PRIVATE KEY", as openssl genrsa and
// opendkim-genkey write). The file must be a regular file readable by
// its owner only, as control/smtpauth must: a key that others can read
// is refused, so that a leak is fixed rather than used.
func ReadKey(path string) (crypto.Signer, error) {
	b, err := safefile.ReadSecret(path, maxKeyFile)
	if err != nil {
		return nil, err
	}
	k, err := ParseKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return k, nil
}

// ParseKey parses a PEM private key (the first PEM block) and checks
// that it is one DKIM can sign with.
func ParseKey(b []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	if _, enc := block.Headers["Proc-Type"]; enc {
		return nil, errors.New("an encrypted key (nobody is there to type its passphrase)")
	}
	var k any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "ENCRYPTED PRIVATE KEY":
		return nil, errors.New("an encrypted key (nobody is there to type its passphrase)")
	default:
		return nil, fmt.Errorf("a PEM %q block, not a private key", block.Type)
	}
	if err != nil {
		return nil, err
	}
	switch k := k.(type) {
	case *rsa.PrivateKey:
		if n := k.N.BitLen(); n < MinRSABits {
			return nil, fmt.Errorf("an RSA key of %d bits; DKIM needs %d or more", n, MinRSABits)
		}
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("a %T key; DKIM signs with RSA or Ed25519", k)
}

// Algorithm is a kind of key -dkimkeygen makes.
type Algorithm string

const (
	RSA     Algorithm = "rsa"     // rsa-sha256, 2048 bits: every verifier knows it
	Ed25519 Algorithm = "ed25519" // ed25519-sha256 (RFC 8463): short, but not yet verified everywhere
)

// GenerateKey makes a new private key and returns it in PEM (PKCS#8).
func GenerateKey(alg Algorithm) (crypto.Signer, []byte, error) {
	var k crypto.Signer
	var err error
	switch alg {
	case RSA:
		k, err = rsa.GenerateKey(rand.Reader, MinRSABits)
	case Ed25519:
		_, k, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, nil, fmt.Errorf("unknown key algorithm %q", alg)
	}
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, nil, err
	}
	return k, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// TXTValue is the DNS TXT record that publishes k's public half
// (RFC 6376 3.6.1): p= is the SubjectPublicKeyInfo for RSA, the bare
// 32-byte key for Ed25519 (RFC 8463 4).
func TXTValue(k crypto.Signer) (string, error) {
	switch pub := k.Public().(type) {
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			return "", err
		}
		return "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der), nil
	case ed25519.PublicKey:
		return "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub), nil
	}
	return "", fmt.Errorf("a %T key", k.Public())
}

// RecordName is the DNS name a key is published under.
func RecordName(domain, selector string) string {
	return selector + "._domainkey." + domain
}

// ZoneLine is the TXT record as a zone file line. A DNS character
// string holds at most 255 bytes, and an RSA 2048 record is longer, so
// the value is split into several strings, which verifiers join.
func ZoneLine(domain, selector, value string) string {
	var parts []string
	for len(value) > 255 {
		parts = append(parts, `"`+value[:255]+`"`)
		value = value[255:]
	}
	parts = append(parts, `"`+value+`"`)
	return RecordName(domain, selector) + ". IN TXT ( " + strings.Join(parts, " ") + " )"
}
