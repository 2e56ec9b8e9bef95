package remote

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	msgauth "github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-smtp"

	"omail/lib/control"
	"omail/lib/dkim"
)

// dkimControl makes a control directory whose dkimkeys signs
// example.org with a new Ed25519 key (mode 600), and returns it with
// the key's TXT record.
func dkimControl(t *testing.T) (*control.Dir, string) {
	t.Helper()
	ctl := control.New(t.TempDir())
	if err := os.MkdirAll(ctl.Path, 0o755); err != nil {
		t.Fatal(err)
	}
	k, pem, err := dkim.GenerateKey(dkim.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	txt, err := dkim.TXTValue(k)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ctl.File("ed1.pem"), pem, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ctl.File("dkimkeys"), []byte("example.org:ed1:ed1.pem\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ctl.File("masquerade"), []byte("kiosk1.local:example.org\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return ctl, txt
}

func verifyDKIM(t *testing.T, data []byte, txt string) []*msgauth.Verification {
	t.Helper()
	vs, err := msgauth.VerifyWithOptions(bytes.NewReader(data), &msgauth.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) {
			if name == "ed1._domainkey.example.org" {
				return []string{txt}, nil
			}
			return nil, errors.New("no record " + name)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

// The message is signed after masquerading, over the bytes sent; the
// signature is in front of it and counted in SIZE. Dot-stuffing is the
// transport's, undone by the server, so a leading dot verifies too.
func TestDKIMSigned(t *testing.T) {
	ctl, txt := dkimControl(t)
	c, err := FromControl(ctl)
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, func(*smtp.Server) {})
	body := "From: Joe <joe@kiosk1.local>\nTo: a@example.net\nSubject: hi\n\n.leading dot\nlast line without newline"
	res := c.Deliver(context.Background(), relay(ts.port), writeMsg(t, body), "joe@kiosk1.local", []string{"a@example.net"})
	checkStatuses(t, res, "a@example.net=ok")
	g := ts.got()[0]
	sig, rest, ok := strings.Cut(string(g.Data), "\r\nFrom: ")
	if !ok || !strings.HasPrefix(sig, "DKIM-Signature:") {
		t.Fatalf("no signature in front: %q", g.Data)
	}
	want := "From: Joe <joe@example.org>\r\nTo: a@example.net\r\nSubject: hi\r\n\r\n.leading dot\r\nlast line without newline\r\n"
	if "From: "+rest != want {
		t.Errorf("message after the signature %q, want %q", rest, want)
	}
	if g.MailOpts.Size != int64(len(g.Data)) {
		t.Errorf("SIZE=%d, sent %d", g.MailOpts.Size, len(g.Data))
	}
	vs := verifyDKIM(t, g.Data, txt)
	if len(vs) != 1 || vs[0].Err != nil || vs[0].Domain != "example.org" {
		t.Errorf("verification %+v", vs)
	}
	// And the check is real.
	if vs := verifyDKIM(t, bytes.Replace(g.Data, []byte("Subject: hi"), []byte("Subject: ho"), 1), txt); len(vs) != 1 || vs[0].Err == nil {
		t.Errorf("a changed Subject verified")
	}

	// Mail from another domain goes unsigned, byte for byte as before.
	plain := "From: ann@example.net\n\nbody\n"
	res = c.Deliver(context.Background(), relay(ts.port), writeMsg(t, plain), "ann@example.net", []string{"a@example.net"})
	checkStatuses(t, res, "a@example.net=ok")
	if g := ts.got()[1]; string(g.Data) != "From: ann@example.net\r\n\r\nbody\r\n" {
		t.Errorf("unsigned message sent as %q", g.Data)
	}
}

// A key that cannot be used defers the message that needs it, with the
// reason, before any connection: it is never sent unsigned.
func TestDKIMKeyUnusable(t *testing.T) {
	ctl, _ := dkimControl(t)
	for _, breakKey := range []func(string) error{
		os.Remove,
		func(p string) error { return os.Chmod(p, 0o644) },
	} {
		if err := breakKey(filepath.Join(ctl.Path, "ed1.pem")); err != nil {
			t.Fatal(err)
		}
		c, err := FromControl(ctl)
		if err != nil {
			t.Fatal(err)
		}
		ts := startServer(t, func(*smtp.Server) {})
		res := c.Deliver(context.Background(), relay(ts.port), writeMsg(t, "From: joe@kiosk1.local\n\nx\n"), "joe@kiosk1.local", []string{"a@example.net", "b@example.net"})
		checkStatuses(t, res, "a@example.net=temp b@example.net=temp")
		if !strings.HasPrefix(res[0].Text, "4.3.0 DKIM key for example.org (selector ed1) unusable: ") {
			t.Errorf("text %q", res[0].Text)
		}
		if n := len(ts.got()); n != 0 {
			t.Errorf("%d transactions with an unusable key", n)
		}
		// Mail that needs no key still goes.
		res = c.Deliver(context.Background(), relay(ts.port), writeMsg(t, "From: ann@example.net\n\nx\n"), "ann@example.net", []string{"a@example.net"})
		checkStatuses(t, res, "a@example.net=ok")
		// Put a key back for the next case.
		ctl, _ = dkimControl(t)
	}
}

func TestDKIMControlErrors(t *testing.T) {
	ctl, _ := dkimControl(t)
	if err := os.WriteFile(ctl.File("dkimkeys"), []byte("example.org:ed1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := FromControl(ctl); err == nil || !strings.Contains(err.Error(), "dkimkeys") {
		t.Errorf("a bad dkimkeys line: %v", err)
	}
	// Without dkimkeys nothing is signed.
	ctl = control.New(t.TempDir())
	c, err := FromControl(ctl)
	if err != nil || !c.DKIM.Empty() {
		t.Errorf("no dkimkeys: %v %+v", err, c)
	}
}

// Lines over 998 octets (RFC 5321 4.5.3.1.6) are broken on the way out,
// in the header and the body, a dot line's stuffing counted; the
// signature is made over the broken lines, so it verifies, and SIZE
// counts them.
func TestDKIMLongLines(t *testing.T) {
	ctl, txt := dkimControl(t)
	c, err := FromControl(ctl)
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, func(*smtp.Server) {})
	body := "From: Joe <joe@kiosk1.local>\nTo: a@example.net\nSubject: " + strings.Repeat("word ", 300) + "\n\n" +
		strings.Repeat("a", 3000) + "\n." + strings.Repeat("b", 1200) + "\nshort\n"
	res := c.Deliver(context.Background(), relay(ts.port), writeMsg(t, body), "joe@kiosk1.local", []string{"a@example.net"})
	checkStatuses(t, res, "a@example.net=ok")
	if len(ts.got()) != 1 {
		t.Fatal("the server took no message")
	}
	g := ts.got()[0]
	for _, l := range strings.SplitAfter(string(g.Data), "\r\n") {
		if n := len(l); n > 1000 || strings.HasPrefix(l, ".") && n > 999 {
			t.Errorf("a line of %d octets went on the wire: %.40q...", n, l)
		}
	}
	if !strings.Contains(string(g.Data), "\r\n"+strings.Repeat("a", 998)+"\r\n "+strings.Repeat("a", 997)+"\r\n ") {
		t.Errorf("the long body line was not broken as expected")
	}
	if g.MailOpts.Size != int64(len(g.Data)) {
		t.Errorf("SIZE=%d, sent %d", g.MailOpts.Size, len(g.Data))
	}
	if vs := verifyDKIM(t, g.Data, txt); len(vs) != 1 || vs[0].Err != nil {
		t.Errorf("verification %+v", vs)
	}
}

// A signed message to a server that takes one recipient a transaction:
// each transaction carries the same signed bytes, one signature, which
// verifies.
func TestDKIMTooManyRecipients(t *testing.T) {
	ctl, txt := dkimControl(t)
	c, err := FromControl(ctl)
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, func(s *smtp.Server) { s.MaxRecipients = 1 })
	body := "From: Joe <joe@kiosk1.local>\nTo: a@example.net\nSubject: hi\n\nhello\n"
	res := c.Deliver(context.Background(), relay(ts.port), writeMsg(t, body), "joe@kiosk1.local", []string{"a@example.net", "b@example.net"})
	checkStatuses(t, res, "a@example.net=ok b@example.net=ok")
	g := ts.got()
	if len(g) != 2 || strings.Join(g[0].Rcpts, ",") != "a@example.net" || strings.Join(g[1].Rcpts, ",") != "b@example.net" {
		t.Fatalf("transactions %+v", g)
	}
	if !bytes.Equal(g[0].Data, g[1].Data) || g[1].MailOpts.Size != int64(len(g[1].Data)) {
		t.Errorf("second transaction differs (SIZE=%d):\n%q\n%q", g[1].MailOpts.Size, g[0].Data, g[1].Data)
	}
	if n := bytes.Count(g[1].Data, []byte("DKIM-Signature:")); n != 1 {
		t.Errorf("%d signatures", n)
	}
	if vs := verifyDKIM(t, g[1].Data, txt); len(vs) != 1 || vs[0].Err != nil {
		t.Errorf("verification %+v", vs)
	}
}
