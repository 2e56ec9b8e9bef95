package smtpdcmd

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"omail/lib/control"
	"omail/lib/internal/testfake"
)

func TestConfigCache(t *testing.T) {
	env := setup(t, map[string]string{"smtpgreeting": "one"})
	c := &configCache{ctl: control.New(env.Dir())}
	a, err := c.get()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := c.get()
	if a != b || a.greeting != "one" {
		t.Fatalf("unchanged files read again (%p %p) or wrong: %q", a, b, a.greeting)
	}
	// An edit is noticed without a signal; the sessions on the old
	// config keep it, and its files close when the last one is done.
	os.WriteFile(filepath.Join(env.Dir(), "control", "smtpgreeting"), []byte("two\n"), 0o644)
	n, _ := c.get()
	if n == a || n.greeting != "two" || !a.stale {
		t.Fatalf("edit not noticed: %q, old stale %v", n.greeting, a.stale)
	}
	c.release(a)
	if a.refs != 1 {
		t.Errorf("refs %d", a.refs)
	}
	c.release(b)
	c.release(n)
	// A new file (rcpthosts did not exist) is a change too.
	os.WriteFile(filepath.Join(env.Dir(), "control", "rcpthosts"), []byte("new.example\n"), 0o644)
	m, _ := c.get()
	if m == n || !n.stale {
		t.Fatal("new control file not noticed")
	}
	if ok, _ := m.rules.Accepts("new.example"); !ok {
		t.Error("new rcpthosts not in effect")
	}
	c.release(m)
	// SIGHUP: read again though nothing changed.
	c.drop()
	r, _ := c.get()
	if r == m || !m.stale {
		t.Error("drop did not make get read the files again")
	}
	c.release(r)
	// A broken file: an error for this connection, no stale config.
	os.WriteFile(filepath.Join(env.Dir(), "control", "maxrcpt"), []byte("many\n"), 0o644)
	if _, err := c.get(); err == nil {
		t.Error("broken maxrcpt read without an error")
	}
}

// certPEM is a self-signed certificate for cn and, unless key is given,
// its own key, as servercert.pem holds them. It returns the key used.
func certPEM(t *testing.T, cn string, key *ecdsa.PrivateKey) (string, *ecdsa.PrivateKey) {
	t.Helper()
	own, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &own.PublicKey, own)
	if err != nil {
		t.Fatal(err)
	}
	if key == nil {
		key = own
	}
	kd, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})) +
		string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})), own
}

// certName is the common name of the certificate cc serves, "" for no TLS.
func certName(t *testing.T, cc *controlConfig) string {
	t.Helper()
	if cc.tls == nil {
		return ""
	}
	c, err := x509.ParseCertificate(cc.tls.Certificates[0].Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return c.Subject.CommonName
}

// A servercert.pem replaced by one that cannot be used, seen by the
// stat check or on SIGHUP, keeps the certificate in use (TLS never
// goes off under a running server), is logged by every session and
// makes SIGHUP say the reload failed. A usable one is taken again; a
// removed one turns TLS off.
func TestConfigCacheKeepsCertificate(t *testing.T) {
	one, key := certPEM(t, "one.example", nil)
	env := setup(t, map[string]string{"servercert.pem": one})
	file := filepath.Join(env.Dir(), "control", "servercert.pem")
	log := &testfake.Log{}
	d := &daemon{server: server{cache: configCache{ctl: control.New(env.Dir())}, log: log}}
	current := func() *controlConfig {
		t.Helper()
		cc, err := d.cache.get()
		if err != nil {
			t.Fatal(err)
		}
		d.cache.release(cc)
		return cc
	}
	if cc := current(); certName(t, cc) != "one.example" || cc.certNote() != nil {
		t.Fatalf("start: %q %v", certName(t, cc), cc.certNote())
	}

	two, _ := certPEM(t, "two.example", key) // two.example's certificate, one.example's key
	for _, bad := range []struct{ name, pem string }{{"garbage", "garbage\n"}, {"a key that does not match", two}} {
		// An edit, noticed by the stat check.
		if err := os.WriteFile(file, []byte(bad.pem+"\n\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		cc := current()
		if certName(t, cc) != "one.example" {
			t.Errorf("%s, edited in: TLS %q, want one.example kept", bad.name, certName(t, cc))
		}
		if n := cc.certNote(); n == nil || !strings.Contains(n.Error(), "new certificate refused, keeping the certificate in use") {
			t.Errorf("%s, edited in: note %v", bad.name, n)
		}
		var slog strings.Builder
		if _, err := cc.session(append(env, "AUTHREQUIRED=1"), nil, &slog); err != nil ||
			!strings.Contains(slog.String(), "servercert.pem") {
			t.Errorf("%s: AUTHREQUIRED session with the kept certificate: %v, log %q", bad.name, err, slog.String())
		}
		// SIGHUP.
		if err := os.WriteFile(file, []byte(bad.pem), 0o644); err != nil {
			t.Fatal(err)
		}
		mark := len(log.String())
		d.reload()
		got := log.String()[mark:]
		if !strings.Contains(got, "SIGHUP: reload failed: control file servercert.pem: ") ||
			!strings.Contains(got, "keeping the certificate in use") || strings.Contains(got, "certificate reloaded") {
			t.Errorf("%s: SIGHUP logged %q", bad.name, got)
		}
		if n := certName(t, current()); n != "one.example" {
			t.Errorf("%s, after SIGHUP: TLS %q, want one.example kept", bad.name, n)
		}
	}

	three, _ := certPEM(t, "three.example", nil)
	os.WriteFile(file, []byte(three), 0o644)
	mark := len(log.String())
	d.reload()
	if got := log.String()[mark:]; got != "omail-smtpd: SIGHUP: control files and certificate reloaded\n" {
		t.Errorf("good certificate: SIGHUP logged %q", got)
	}
	if cc := current(); certName(t, cc) != "three.example" || cc.certNote() != nil {
		t.Errorf("good certificate: TLS %q, note %v", certName(t, cc), cc.certNote())
	}
	// Then broken: three.example, not one.example, is the one kept.
	os.WriteFile(file, []byte("garbage\n"), 0o644)
	if n := certName(t, current()); n != "three.example" {
		t.Errorf("broken after renewal: TLS %q", n)
	}
	// Removed: no TLS, on purpose; a broken one then has nothing to keep.
	os.Remove(file)
	if cc := current(); cc.tls != nil || cc.certNote() != nil {
		t.Errorf("removed: TLS %q, note %v", certName(t, cc), cc.certNote())
	}
	os.WriteFile(file, []byte("garbage\n"), 0o644)
	if cc := current(); cc.tls != nil || cc.certNote() == nil || !strings.Contains(cc.certNote().Error(), "STARTTLS not offered") {
		t.Errorf("broken after removal: TLS %q, note %v", certName(t, cc), cc.certNote())
	}
}
