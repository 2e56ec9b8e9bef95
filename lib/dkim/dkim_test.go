package dkim

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"

	msgauth "github.com/emersion/go-msgauth/dkim"
)

// testKeySet is made once per test binary: RSA 2048 generation is slow.
type testKeySet struct {
	once             sync.Once
	rsa, ed          crypto.Signer
	rsaPEM, edPEM    []byte
	rsaTXT, edTXT    string
	rsaPKCS1, rsa1k  []byte
	ecdsaPEM         []byte
	generateFailures []error
}

var testKeys testKeySet

func keysForTest(t testing.TB) *testKeySet {
	t.Helper()
	k := &testKeys
	k.once.Do(func() {
		fail := func(err error) {
			if err != nil {
				k.generateFailures = append(k.generateFailures, err)
			}
		}
		var err error
		k.rsa, k.rsaPEM, err = GenerateKey(RSA)
		fail(err)
		k.ed, k.edPEM, err = GenerateKey(Ed25519)
		fail(err)
		if err == nil {
			k.rsaTXT, err = TXTValue(k.rsa)
			fail(err)
			k.edTXT, err = TXTValue(k.ed)
			fail(err)
			k.rsaPKCS1 = pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k.rsa.(*rsa.PrivateKey))})
		}
		small, err := rsa.GenerateKey(rand.Reader, 1024)
		fail(err)
		if err == nil {
			k.rsa1k = pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(small)})
		}
		ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		fail(err)
		if err == nil {
			der, err := x509.MarshalPKCS8PrivateKey(ec)
			fail(err)
			k.ecdsaPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
		}
	})
	if len(k.generateFailures) > 0 {
		t.Fatalf("making test keys: %v", k.generateFailures)
	}
	return k
}

// writeKey writes a key file of the given mode into dir.
func writeKey(t *testing.T, dir, name string, b []byte, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParse(t *testing.T) {
	k, err := Parse([]string{
		"Example.ORG.:rsa1:dkim/rsa1.pem",
		"example.org:ed1:/etc/keys/ed1.pem",
		"mail.example.net : s1 : k:with:colons",
	}, "/home/omail/control")
	if err != nil {
		t.Fatal(err)
	}
	want := []Key{
		{"example.org", "rsa1", "/home/omail/control/dkim/rsa1.pem"},
		{"example.org", "ed1", "/etc/keys/ed1.pem"},
	}
	for _, d := range []string{"example.org", "EXAMPLE.org", "a.b.example.org.", "mail.example.org"} {
		if got := k.For(d); !reflect.DeepEqual(got, want) {
			t.Errorf("For(%q) = %v, want %v", d, got, want)
		}
	}
	if got := k.For("x.mail.example.net"); len(got) != 1 || got[0].Path != "/home/omail/control/k:with:colons" || got[0].Selector != "s1" {
		t.Errorf("For(x.mail.example.net) = %v", got)
	}
	for _, d := range []string{"example.net", "org", "", "notexample.org", "example.org.evil.test"} {
		if got := k.For(d); got != nil {
			t.Errorf("For(%q) = %v, want none", d, got)
		}
	}
	// An internationalised domain may be written as U-labels: it is the
	// same domain as its A-labels, as everywhere in omail.
	idn, err := Parse([]string{"bücher.example:s:k"}, "/c")
	if err != nil || len(idn.For("xn--bcher-kva.example")) != 1 || len(idn.For("BÜCHER.example")) != 1 {
		t.Errorf("U-label dkimkeys line: %v %v", idn, err)
	}
	var none *Keys
	if !none.Empty() || none.For("example.org") != nil {
		t.Error("nil Keys signs")
	}
	for _, bad := range []string{
		"example.org", "example.org:sel", "example.org:sel:", ":sel:k", "example.org::k",
		"exa mple.org:s:k", "example.org:s/../x:k", "-bad.org:s:k", "a..b:s:k", "ex\xff.org:s:k",
		"example.org:" + strings.Repeat("a", 64) + ":k",
	} {
		if _, err := Parse([]string{bad}, "/c"); err == nil || !strings.Contains(err.Error(), "dkimkeys") {
			t.Errorf("Parse(%q) = %v, want an error naming dkimkeys", bad, err)
		}
	}
}

func TestReadKey(t *testing.T) {
	tk := keysForTest(t)
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		b    []byte
		mode os.FileMode
		want string // error text; "" for a key
	}{
		{"rsa8", tk.rsaPEM, 0o600, ""},
		{"rsa1", tk.rsaPKCS1, 0o400, ""},
		{"ed", tk.edPEM, 0o600, ""},
		{"open", tk.edPEM, 0o640, "readable by others"},
		{"world", tk.edPEM, 0o604, "readable by others"},
		{"small", tk.rsa1k, 0o600, "1024 bits"},
		{"ecdsa", tk.ecdsaPEM, 0o600, "RSA or Ed25519"},
		{"text", []byte("not a key\n"), 0o600, "no PEM block"},
		{"cert", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}), 0o600, "not a private key"},
		{"enc", pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}}), 0o600, "encrypted"},
		{"garbage", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}}), 0o600, "asn1"},
		{"huge", bytes.Repeat([]byte("x"), maxKeyFile+1), 0o600, "not a key"},
	} {
		p := writeKey(t, dir, c.name, c.b, c.mode)
		k, err := ReadKey(p)
		switch {
		case c.want == "" && (err != nil || k == nil):
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v, want one saying %q", c.name, err, c.want)
		}
	}
	if _, err := ReadKey(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if err := os.Symlink(filepath.Join(dir, "ed"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadKey(filepath.Join(dir, "link")); err == nil {
		t.Error("a symlink to a key was followed")
	}
	if _, err := ReadKey(dir); err == nil || !strings.Contains(err.Error(), "regular") {
		t.Errorf("a directory: %v", err)
	}
}

// signMessage runs msg through a Signer, chunk bytes at a time, and
// returns the signature fields followed by the message.
func signMessage(t *testing.T, keys *Keys, msg string, chunk int) ([]byte, error) {
	t.Helper()
	return signWith(keys.NewSigner(), msg, chunk)
}

// signWith is signMessage with a Signer made by the caller.
func signWith(s *Signer, msg string, chunk int) ([]byte, error) {
	defer s.Abort()
	b := []byte(msg)
	for len(b) > 0 {
		n := min(chunk, len(b))
		if _, err := s.Write(b[:n]); err != nil {
			return nil, err
		}
		b = b[n:]
	}
	sig, err := s.Finish()
	if err != nil {
		return nil, err
	}
	return append(sig, msg...), nil
}

// verify checks every signature with go-msgauth's verifier, the public
// keys given by name instead of DNS, and returns the domains that
// verified, "FAIL:" and the error for those that did not.
func verify(t *testing.T, signed []byte, txt map[string]string) []string {
	t.Helper()
	vs, err := msgauth.VerifyWithOptions(bytes.NewReader(signed), &msgauth.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) {
			if v, ok := txt[name]; ok {
				return []string{v}, nil
			}
			return nil, errors.New("no such record: " + name)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, v := range vs {
		if v.Err != nil {
			out = append(out, "FAIL:"+v.Err.Error())
			continue
		}
		out = append(out, v.Domain)
	}
	return out
}

const message = "Received: from kiosk by proxy; Tue, 1 Dec 2026 12:00:00 +0000\r\n" +
	"From: Joe =?utf-8?q?Caf=C3=A9?= <joe@mail.example.org>\r\n" +
	"To: a@example.net,\r\n b@example.net\r\n" +
	"Subject:   folded\r\n\tsubject  with   spaces\r\n" +
	"Date: Tue, 1 Dec 2026 12:00:00 +0000\r\n" +
	"Message-ID: <1@mail.example.org>\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"\r\n" +
	"caf\xc3\xa9  with  spaces   \r\n" +
	"..a stuffed-looking line\r\n" +
	"\r\n\r\n"

func TestSignVerifies(t *testing.T) {
	tk := keysForTest(t)
	dir := t.TempDir()
	writeKey(t, dir, "rsa.pem", tk.rsaPEM, 0o600)
	writeKey(t, dir, "ed.pem", tk.edPEM, 0o600)
	txt := map[string]string{"rsa1._domainkey.example.org": tk.rsaTXT, "ed1._domainkey.example.org": tk.edTXT}
	for _, c := range []struct {
		lines []string
		want  []string
	}{
		{[]string{"example.org:rsa1:rsa.pem"}, []string{"example.org"}},
		{[]string{"example.org:ed1:ed.pem"}, []string{"example.org"}},
		{[]string{"example.org:ed1:ed.pem", "example.org:rsa1:rsa.pem"}, []string{"example.org", "example.org"}},
	} {
		keys, err := Parse(c.lines, dir)
		if err != nil {
			t.Fatal(err)
		}
		var first []byte
		for _, chunk := range []int{1, 3, 4096} { // the header's end straddling writes
			signed, err := signMessage(t, keys, message, chunk)
			if err != nil {
				t.Fatalf("%v chunk %d: %v", c.lines, chunk, err)
			}
			if got := verify(t, signed, txt); !reflect.DeepEqual(got, c.want) {
				t.Errorf("%v chunk %d: verified %q, want %q\n%s", c.lines, chunk, got, c.want, signed)
			}
			if first == nil {
				first = signed
			}
		}
		// The check is real: a changed header field or body fails.
		for _, change := range [][2]string{{"Subject:   folded", "Subject:   faked"}, {"with  spaces   \r\n", "with  space   \r\n"}, {"To: a@", "To: c@"}} {
			bad := bytes.Replace(first, []byte(change[0]), []byte(change[1]), 1)
			if bytes.Equal(bad, first) {
				t.Fatalf("change %q not made", change)
			}
			for _, v := range verify(t, bad, txt) {
				if !strings.HasPrefix(v, "FAIL:") {
					t.Errorf("%v: verified after %q", c.lines, change)
				}
			}
		}
		// A second From added after signing fails too (h= oversigns).
		added := bytes.Replace(first, []byte("Date:"), []byte("From: evil@example.org\r\nDate:"), 1)
		for _, v := range verify(t, added, txt) {
			if !strings.HasPrefix(v, "FAIL:") {
				t.Errorf("%v: verified with a second From", c.lines)
			}
		}
	}
}

func TestSignatureFields(t *testing.T) {
	tk := keysForTest(t)
	dir := t.TempDir()
	writeKey(t, dir, "ed.pem", tk.edPEM, 0o600)
	keys, _ := Parse([]string{"example.org:ed1:ed.pem"}, dir)
	signed, err := signMessage(t, keys, message, 512)
	if err != nil {
		t.Fatal(err)
	}
	sig, _, _ := strings.Cut(string(signed), "\r\nReceived:")
	sig = strings.ReplaceAll(sig, "\r\n", "")
	for _, want := range []string{"DKIM-Signature:", " a=ed25519-sha256;", " c=relaxed/relaxed;", " d=example.org;", " s=ed1;",
		" h=From:From:To:To:Subject:Subject:Date:Date:Message-ID:Message-ID:MIME-Version:MIME-Version:Content-Type:Content-Type;"} {
		if !strings.Contains(sig, want) {
			t.Errorf("signature lacks %q:\n%s", want, sig)
		}
	}
}

func TestNotSigned(t *testing.T) {
	tk := keysForTest(t)
	dir := t.TempDir()
	writeKey(t, dir, "ed.pem", tk.edPEM, 0o600)
	keys, _ := Parse([]string{"example.org:ed1:ed.pem"}, dir)
	for _, msg := range []string{
		"From: joe@example.net\r\n\r\nbody\r\n", // another domain
		"To: joe@example.org\r\n\r\nbody\r\n",   // no From
		"From: undisclosed\r\n\r\nbody\r\n",     // no address
		"\r\nFrom: joe@example.org\r\n",         // no header at all
		"",
	} {
		for _, k := range []*Keys{keys, nil, {}} {
			signed, err := signMessage(t, k, msg, 7)
			if err != nil || string(signed) != msg {
				t.Errorf("%q: %q, %v; want it unsigned", msg, signed, err)
			}
		}
	}
}

// Headers that are odd but not unsignable still get the author's domain.
func TestFromDomain(t *testing.T) {
	for _, c := range []struct{ from, want string }{
		{"joe@Example.ORG", "example.org"},
		{`"Joe, the Kiosk" <joe@example.org>`, "example.org"},
		{"Joe <joe@example.org>, Ann <ann@example.net>", "example.org"},
		{"Jo\xc3\xa9 \"x <joe@example.org>", "example.org"},
		{"joe@example.org.", "example.org"},
		{"<joe@example.org> (comment)", "example.org"},
		{"nobody", ""},
	} {
		fs := fields([]byte("Subject: x\r\nfrom : "+c.from+"\r\nFrom: second@other.test\r\n"), false)
		got, ok := fromDomain(fs)
		if !ok || got != c.want {
			t.Errorf("From: %q gives %q %v, want %q", c.from, got, ok, c.want)
		}
	}
}

func TestHeaderOnlyMessage(t *testing.T) {
	tk := keysForTest(t)
	dir := t.TempDir()
	writeKey(t, dir, "rsa.pem", tk.rsaPEM, 0o600)
	keys, _ := Parse([]string{"example.org:rsa1:rsa.pem"}, dir)
	msg := "From: joe@example.org\r\nSubject: nothing else\r\n"
	signed, err := signMessage(t, keys, msg, 5)
	if err != nil {
		t.Fatal(err)
	}
	if got := verify(t, append(signed, '\r', '\n'), map[string]string{"rsa1._domainkey.example.org": tk.rsaTXT}); !reflect.DeepEqual(got, []string{"example.org"}) {
		t.Errorf("verified %q", got)
	}
}

func TestUnusableKey(t *testing.T) {
	tk := keysForTest(t)
	dir := t.TempDir()
	writeKey(t, dir, "open.pem", tk.edPEM, 0o644)
	keys, _ := Parse([]string{"example.org:ed1:missing.pem", "example.net:ed1:open.pem"}, dir)
	for _, c := range []struct{ msg, want string }{
		{"From: joe@example.org\r\n\r\nbody\r\n", "missing.pem: no such file"},
		{"From: joe@example.net\r\n\r\nbody\r\n", "readable by others"},
		{"From: joe@example.net\r\n", "readable by others"}, // found at Finish
	} {
		_, err := signMessage(t, keys, c.msg, 3)
		var de *Error
		if !errors.As(err, &de) || de.Perm || !strings.HasPrefix(de.Msg, "4.3.0 DKIM key for ") || !strings.Contains(de.Msg, c.want) {
			t.Errorf("%q: %v, want a temporary *Error saying %q", c.msg, err, c.want)
		}
	}
}

func TestHugeHeader(t *testing.T) {
	tk := keysForTest(t)
	dir := t.TempDir()
	writeKey(t, dir, "ed.pem", tk.edPEM, 0o600)
	keys, _ := Parse([]string{"example.org:ed1:ed.pem"}, dir)
	filler := strings.Repeat("X-Filler: "+strings.Repeat("y", 1000)+"\r\n", MaxHeader/1000+10)
	// The author has no key: sent unsigned, whatever the header's size.
	msg := "From: joe@example.net\r\n" + filler + "\r\nbody\r\n"
	if signed, err := signMessage(t, keys, msg, 64<<10); err != nil || string(signed) != msg {
		t.Errorf("a huge header from an unsigned domain: %v", err)
	}
	// The author has a key, or the From is not in the first MaxHeader
	// bytes: it cannot be signed, ever.
	for _, msg := range []string{"From: joe@example.org\r\n" + filler + "\r\nbody\r\n", filler + "From: joe@example.net\r\n\r\nbody\r\n"} {
		_, err := signMessage(t, keys, msg, 64<<10)
		var de *Error
		if !errors.As(err, &de) || !de.Perm || !strings.HasPrefix(de.Msg, "5.3.4 ") {
			t.Errorf("a huge header: %v, want a permanent *Error", err)
		}
	}
}

func TestGenerateAndZoneLine(t *testing.T) {
	tk := keysForTest(t)
	for _, c := range []struct {
		k    crypto.Signer
		pem  []byte
		txt  string
		kind string
	}{{tk.rsa, tk.rsaPEM, tk.rsaTXT, "k=rsa"}, {tk.ed, tk.edPEM, tk.edTXT, "k=ed25519"}} {
		back, err := ParseKey(c.pem)
		if err != nil || !reflect.DeepEqual(back.Public(), c.k.Public()) {
			t.Errorf("%s: the PEM does not give the key back: %v", c.kind, err)
		}
		if !strings.HasPrefix(c.txt, "v=DKIM1; "+c.kind+"; p=") {
			t.Errorf("TXT %q", c.txt)
		}
		line := ZoneLine("example.org", "sel", c.txt)
		name, rest, _ := strings.Cut(line, " IN TXT ( ")
		if name != "sel._domainkey.example.org." || !strings.HasSuffix(rest, " )") {
			t.Fatalf("zone line %q", line)
		}
		var joined string
		for _, s := range strings.Split(strings.TrimSuffix(rest, " )"), " ") {
			if !strings.HasPrefix(s, `"`) && joined != "" {
				joined += " " + strings.TrimSuffix(s, `"`) // a space inside the value
				continue
			}
			if len(s) > 257 {
				t.Errorf("a string of %d bytes in %q", len(s)-2, line)
			}
			joined += strings.Trim(s, `"`)
		}
		if joined != c.txt {
			t.Errorf("zone line %q joins to %q, want %q", line, joined, c.txt)
		}
	}
	if _, _, err := GenerateKey("dsa"); err == nil {
		t.Error("made a dsa key")
	}
}

// FuzzParse: whatever dkimkeys holds, Parse either names a bad line or
// gives keys with DNS-name domains and selectors that For finds again.
func FuzzParse(f *testing.F) {
	f.Add("example.org:rsa1:dkim/rsa1.pem\n.example.net:s:/abs/k\n")
	f.Add("a:b:c:d\n#comment\n\n")
	f.Add("Example.ORG. : S1 : k")
	f.Add("x..y:s:k")
	f.Fuzz(func(t *testing.T, text string) {
		var lines []string
		for _, l := range strings.Split(text, "\n") {
			if l = strings.TrimSpace(l); l != "" && l[0] != '#' {
				lines = append(lines, l)
			}
		}
		k, err := Parse(lines, "/control")
		if err != nil {
			return
		}
		for d, keys := range k.byDomain {
			if len(keys) == 0 {
				t.Fatalf("domain %q with no keys", d)
			}
			for _, key := range keys {
				if CheckName("d", key.Domain) != nil || CheckName("s", key.Selector) != nil || !filepath.IsAbs(key.Path) {
					t.Fatalf("bad key %+v from %q", key, text)
				}
				if got := k.For("sub." + key.Domain); len(got) == 0 {
					t.Fatalf("For(sub.%s) found nothing", key.Domain)
				}
			}
		}
	})
}

// FuzzSigner: any message, however hostile its header, is either
// signed, left unsigned, or refused with an *Error; never a panic.
func FuzzSigner(f *testing.F) {
	f.Add([]byte(message), 7)
	f.Add([]byte("From: joe@example.org\r\n"), 1)
	f.Add([]byte("\r\n\r\n"), 2)
	f.Add([]byte("From: <@>\r\n \r\n\r\n"), 3)
	keys, _ := Parse([]string{"example.org:ed1:ed.pem"}, "/nonexistent")
	tk := keysForTest(f)
	f.Fuzz(func(t *testing.T, msg []byte, chunk int) {
		if chunk < 1 {
			chunk = 1
		}
		s := keys.NewSigner()
		s.readKey = func(string) (crypto.Signer, error) { return tk.ed, nil } // no file per input
		_, err := signWith(s, string(msg), chunk)
		var de *Error
		if err != nil && !errors.As(err, &de) {
			t.Fatalf("%q: %v", msg, err)
		}
	})
}

// The body streams through: while a 32 MiB message is being signed,
// the heap holds a small fraction of it (the header and the hashing
// buffers), never the body. A run of empty lines, which go-msgauth's
// canonicalisation would hold, is bounded too.
func TestSignStreams(t *testing.T) {
	tk := keysForTest(t)
	dir := t.TempDir()
	writeKey(t, dir, "ed.pem", tk.edPEM, 0o600)
	keys, _ := Parse([]string{"example.org:ed1:ed.pem"}, dir)
	const size = 32 << 20
	heap := func() uint64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	for _, c := range []struct {
		name string
		line string
		perm bool
	}{
		{"text", strings.Repeat("0123456789 abcdef ", 4) + "\r\n", false},
		{"empty lines", "\r\n", true},
		{"blank lines", " \t \r\n", true},
	} {
		chunk := bytes.Repeat([]byte(c.line), (32<<10)/len(c.line))
		s := keys.NewSigner()
		before := heap()
		_, err := s.Write([]byte("From: joe@example.org\r\nSubject: big\r\n\r\nfirst line\r\n"))
		for n := 0; n < size && err == nil; n += len(chunk) {
			_, err = s.Write(chunk)
		}
		if grown := int64(heap()) - int64(before); grown > size/16 {
			t.Errorf("%s: the heap grew by %d bytes while signing %d", c.name, grown, size)
		}
		if err == nil {
			_, err = s.Write([]byte("last line\r\n"))
		}
		if err == nil {
			_, err = s.Finish()
		}
		s.Abort()
		var de *Error
		if c.perm != (errors.As(err, &de) && de.Perm && strings.HasPrefix(de.Msg, "5.3.4 ")) || !c.perm && err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}
