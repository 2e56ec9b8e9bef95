package unpacker

import (
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"omail/lib/bundle"
	"omail/lib/internal/testfake"
	"omail/lib/ocmpkey"
	"omail/lib/quarantine"
)

func newKey(t testing.TB) (string, ed25519.PrivateKey) {
	pub, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return ocmpkey.FormatPublic(pub), key
}

// quarantined lists the quarantine of home h.
func quarantinedFiles(h string) []string {
	m, _ := filepath.Glob(filepath.Join(h, quarantine.Dir, "*"))
	return m
}

// proxySetup is a proxy home with a fake queue (its directory q) and the
// ocmppeers lines given, and FILE in endpoint "proxy"'s download
// directory.
func proxySetup(t *testing.T, peerLines ...string) (u *Unpacker, h string, q *testfake.Queue, file string) {
	u, h = setup(t)
	q, u.Env = fakeQueue(t)
	return u, h, q, proxyIn(t, h, peerLines...)
}

var one = []msg{{"amina@kiosk1.example", []string{"r@internet.example"}, "Subject: hello\n\nhi\n"}}

// Which bundles a proxy delivers: signed by a key ocmppeers lists for
// the endpoint the file came from, or unsigned from an endpoint marked
// "-"; everything else is quarantined with nothing queued.
func TestProxyTrust(t *testing.T) {
	k1s, k1 := newKey(t)
	k2s, k2 := newKey(t)
	anys, anyKey := newKey(t)
	_, stranger := newKey(t)
	peerLines := []string{"# kiosks", "kiosk1 " + k1s, "kiosk1 " + k2s, "old -", "* " + anys}
	// Version 3 names the key by its id (lib/bundle, compact.go): the
	// same bundles, the same outcomes, the log naming the key id.
	strangerID := bundle.KeyID(stranger.Public().(ed25519.PublicKey))
	for _, v := range []int{bundle.Version, bundle.VersionCompact} {
		unknown := "endpoint kiosk1: refused: signed by ed25519:"
		if v == bundle.VersionCompact {
			unknown = fmt.Sprintf("endpoint kiosk1: refused: signed by key id %x, a key ocmppeers does not list for endpoint kiosk1", strangerID[:])
		}
		proxyTrust(t, v, []proxyTrustCase{
			{"signed", "kiosk1", "kiosk1", k1, peerLines, "done", "1 messages queued"},
			{"rotated key", "kiosk1", "kiosk1", k2, peerLines, "done", "1 messages queued"},
			{"key for every endpoint", "kiosk9", "kiosk9", anyKey, peerLines, "done", "1 messages queued"},
			{"unknown key", "kiosk1", "kiosk1", stranger, peerLines, "quarantined", unknown},
			{"unsigned", "kiosk1", "kiosk1", nil, peerLines, "quarantined", "refused: unsigned, and ocmppeers does not take unsigned bundles from endpoint kiosk1 (\"kiosk1 -\")"},
			{"legacy kiosk", "old", "old", nil, peerLines, "done", "1 messages queued"},
			{"another endpoint's key", "kiosk2", "kiosk2", k1, peerLines, "quarantined", "a key ocmppeers does not list for endpoint kiosk2"},
			{"moved to another endpoint", "kiosk2", "kiosk1", anyKey, peerLines, "quarantined", "refused: packed for endpoint kiosk1, arrived under kiosk2"},
			{"no ocmppeers", "kiosk1", "kiosk1", k1, nil, "quarantined", "this proxy delivers no bundle until it says who may send them"},
			{"empty ocmppeers", "kiosk1", "kiosk1", k1, []string{"# nobody yet"}, "quarantined", "refused"},
		})
	}
}

type proxyTrustCase struct {
	name    string
	dir, ep string // the directory it arrives under, the endpoint packed for
	key     ed25519.PrivateKey
	peers   []string // nil: no ocmppeers file
	outcome string
	log     string
}

// proxyTrust runs TestProxyTrust's cases on bundles of version v.
func proxyTrust(t *testing.T, v int, cases []proxyTrustCase) {
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s version %d", c.name, v), func(t *testing.T) {
			u, h := setup(t)
			q, env := fakeQueue(t)
			u.Env = env
			file := proxyInFor(t, h, c.dir, c.peers...)
			writeVersion(t, file, c.ep, c.key, v, one)
			err := u.Unpack(file, "")
			if outcome(err) != c.outcome || !strings.Contains(logText(u)+errText(err), c.log) {
				t.Fatalf("%v (%s); log %s", err, outcome(err), logText(u))
			}
			if c.outcome == "quarantined" {
				if n := queued(q); len(n) != 0 {
					t.Errorf("queued %v", n)
				}
				if n := quarantinedFiles(h); len(n) != 1 {
					t.Errorf("quarantine %v", n)
				}
			} else if n := queued(q); len(n) != 1 {
				t.Errorf("queued %v", n)
			}
		})
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// A bad ocmppeers line keeps FILE (temporary): the proxy neither guesses
// nor throws the bundle away.
func TestProxyBadPeers(t *testing.T) {
	u, h := setup(t)
	_, u.Env = fakeQueue(t)
	file := proxyIn(t, h, "proxy -", "proxy ed25519:short")
	writeBundle(t, file, one)
	err := u.Unpack(file, "")
	if outcome(err) != "temporary" || !strings.Contains(err.Error(), "control file ocmppeers: line 2: ") {
		t.Fatalf("%v", err)
	}
	if _, err := os.Stat(file); err != nil {
		t.Error("FILE not kept")
	}
}

// A FILE not in an endpoint's download directory has no endpoint.
func TestProxyElsewhere(t *testing.T) {
	u, h := setup(t)
	q, env := fakeQueue(t)
	u.Env = env
	proxyIn(t, h, "* -")
	for _, file := range []string{
		filepath.Join(h, "in"),
		filepath.Join(h, "ocmp", "proxy", "mail", "upload", "x"),
		filepath.Join(h, "other", "proxy", "mail", "download", "x"),
	} {
		os.MkdirAll(filepath.Dir(file), 0o755)
		writeBundle(t, file, one)
		err := u.Unpack(file, "")
		if outcome(err) != "quarantined" || !strings.Contains(err.Error(), "refused: not in "+filepath.Join(h, "ocmp")+"/ENDPOINT/mail/download/") {
			t.Errorf("%s: %v", file, err)
		}
	}
	if n := queued(q); len(n) != 0 {
		t.Errorf("queued %v", n)
	}
	// A relative FILE, and a symbolic link to ocmpdir, are where they are.
	os.Symlink(filepath.Join(h, "ocmp"), filepath.Join(h, "link"))
	os.WriteFile(filepath.Join(h, "control", "ocmpdir"), []byte(filepath.Join(h, "link")+"\n"), 0o644)
	wd, _ := os.Getwd()
	defer os.Chdir(wd)
	os.Chdir(filepath.Join(h, "ocmp", "proxy", "mail"))
	writeBundle(t, "download/x", one)
	if err := u.Unpack("download/x", ""); err != nil {
		t.Errorf("relative FILE: %v", err)
	}
}

// The sender policy: allowed senders are queued, others quarantined and
// never bounced; the rest of the bundle goes on.
func TestProxySenders(t *testing.T) {
	u, h, q, file := proxySetup(t, "proxy -")
	os.WriteFile(filepath.Join(h, "control", "ocmpsenders"), []byte("proxy:@kiosk1.example\nproxy:.villages.example\n*:boss@ngo.example\nother:@evil.example\n"), 0o644)
	id := writeBundle(t, file, []msg{
		{"amina@kiosk1.example", []string{"r1@y"}, "Subject: allowed\n"},
		{"ceo@bank.example", []string{"r2@y"}, "Subject: forged\n\nsend money\n"},
		{"x@a.villages.example", []string{"r3@y"}, "Subject: subdomain\n"},
		{"spam@evil.example", []string{"r4@y"}, "Subject: other endpoint's domain\n"},
		{"", []string{"r5@y"}, "Subject: a bounce\n"},
		{"boss@ngo.example", []string{"r6@y"}, "Subject: every endpoint\n"},
	})
	if err := u.Unpack(file, ""); err != nil {
		t.Fatalf("%v: %s", err, logText(u))
	}
	var subjects []string
	for _, m := range queued(q) {
		_, s, _ := strings.Cut(string(m.Message), "Subject: ")
		subjects = append(subjects, strings.TrimSpace(s))
	}
	if strings.Join(subjects, "|") != "allowed|subdomain|a bounce|every endpoint" {
		t.Errorf("queued %q", subjects)
	}
	qf, _ := os.ReadFile(filepath.Join(h, quarantine.Dir, id+".2"))
	if !strings.Contains(string(qf), "X-Omail-Quarantined: endpoint proxy may not send as <ceo@bank.example> (ocmpsenders)\n") ||
		!strings.Contains(string(qf), "Return-Path: <ceo@bank.example>\nX-Omail-Recipient: <r2@y>\n") ||
		!strings.HasSuffix(string(qf), "Subject: forged\n\nsend money\n") {
		t.Errorf("quarantined message: %q", qf)
	}
	if _, err := os.Stat(filepath.Join(h, quarantine.Dir, id+".4")); err != nil {
		t.Error(err)
	}
	if l := logText(u); !strings.Contains(l, "endpoint proxy: message 2 from <ceo@bank.example> to r2@y: refused: endpoint proxy may not send as <ceo@bank.example> (ocmpsenders): not relayed, not bounced, kept in ") ||
		strings.Contains(l, "no control file ocmpsenders") {
		t.Errorf("log: %s", l)
	}
}

// No ocmpsenders: every sender, and a warning once per bundle.
func TestProxyNoSenders(t *testing.T) {
	u, _, q, file := proxySetup(t, "proxy -")
	writeBundle(t, file, []msg{one[0], {"ceo@bank.example", []string{"r@y"}, "x"}})
	if err := u.Unpack(file, ""); err != nil || len(queued(q)) != 2 {
		t.Fatalf("%v %v", err, queued(q))
	}
	if n := strings.Count(logText(u), "no control file ocmpsenders: relaying whatever sender"); n != 1 {
		t.Errorf("%d warnings: %s", n, logText(u))
	}
}

// databytes: a message over it is never written; its sender, if allowed,
// gets a 5.3.4 bounce, otherwise it is quarantined without its body.
func TestProxyDatabytes(t *testing.T) {
	u, h, q, file := proxySetup(t, "proxy -")
	os.WriteFile(filepath.Join(h, "control", "databytes"), []byte("100\n"), 0o644)
	os.WriteFile(filepath.Join(h, "control", "ocmpsenders"), []byte("proxy:@kiosk1.example\n"), 0o644)
	big := "Subject: big\n\n" + strings.Repeat("x", 100)
	id := writeBundle(t, file, []msg{
		{"amina@kiosk1.example", []string{"r1@y"}, big},
		{"ceo@bank.example", []string{"r2@y"}, big},
		{"", []string{"r3@y"}, big},
		{"amina@kiosk1.example", []string{"r4@y"}, strings.Repeat("y", 100)}, // exactly databytes
	})
	if err := u.Unpack(file, ""); err != nil {
		t.Fatalf("%v: %s", err, logText(u))
	}
	ms := queued(q)
	if len(ms) != 2 {
		t.Fatalf("queued %v", ms)
	}
	b0, e0 := ms[0].Message, ms[0].Envelope
	if !strings.Contains(string(b0), "Subject: failure notice") || !strings.Contains(string(b0), "5.3.4") || strings.Contains(string(b0), "xxxx") || string(e0) != "F\x00Tamina@kiosk1.example\x00\x00" {
		t.Errorf("bounce %q %q", b0, e0)
	}
	b1 := ms[1].Message
	if !strings.HasSuffix(string(b1), strings.Repeat("y", 100)) {
		t.Errorf("message at the limit: %q", b1)
	}
	for _, n := range []string{".2", ".3"} {
		qf, err := os.ReadFile(filepath.Join(h, quarantine.Dir, id+n))
		if err != nil || strings.Contains(string(qf), "xxxx") || !strings.Contains(string(qf), "X-Omail-Body: not kept, 114 bytes\n") {
			t.Errorf("quarantined %s: %q %v", n, qf, err)
		}
	}
}

// A bundle that decompresses past bundlemax + databytes (and framing) is
// a bomb: quarantined whole, nothing queued.
func TestProxyBomb(t *testing.T) {
	u, h, q, file := proxySetup(t, "proxy -")
	os.WriteFile(filepath.Join(h, "control", "databytes"), []byte("10000\n"), 0o644)
	os.WriteFile(filepath.Join(h, "control", "bundlemax"), []byte("10000\n"), 0o644)
	writeBundle(t, file, []msg{one[0], {"a@kiosk1.example", []string{"r@y"}, strings.Repeat("\x00", 8<<20)}})
	if fi, _ := os.Stat(file); fi.Size() > 4096 {
		t.Fatalf("the bomb is %d bytes", fi.Size())
	}
	err := u.Unpack(file, "")
	if outcome(err) != "quarantined" || !strings.Contains(err.Error(), "decompression bomb") {
		t.Fatalf("%v", err)
	}
	if n := queued(q); len(n) != 0 {
		t.Errorf("queued %v", n)
	}
}

// The client: without ocmppeers, as before; with it, USER is the
// endpoint.
func TestClientTrust(t *testing.T) {
	ks, key := newKey(t)
	_, stranger := newKey(t)
	for _, c := range []struct {
		name     string
		peers    string // "": no file
		key      ed25519.PrivateKey
		outcome  string
		outcome3 string // for version 3, when not outcome
		ep       string // packed for; "": bob, to whom it is handed
	}{
		{"no ocmppeers, unsigned", "", nil, "done", "", ""},
		// Version 3 names the signer by a key id: without ocmppeers
		// there is no key to check the signature against.
		{"no ocmppeers, signed", "", stranger, "done", "quarantined", ""},
		{"the proxy's key for everyone", "* " + ks, key, "done", "", ""},
		{"the user's key", "bob " + ks, key, "done", "", ""},
		{"another user's key", "alice " + ks, key, "quarantined", "", ""},
		{"unknown key", "* " + ks, stranger, "quarantined", "", ""},
		{"unsigned", "* " + ks, nil, "quarantined", "", ""},
		{"unsigned allowed", "* " + ks + "\nbob -", nil, "done", "", ""},
		// Signed for alice, found in bob's download directory: not
		// bob's mail (without ocmppeers, nothing is checked: as before).
		{"packed for another user", "* " + ks, key, "quarantined", "", "alice"},
		{"no ocmppeers, packed for another user", "", nil, "done", "", "alice"},
	} {
		for _, v := range []int{bundle.Version, bundle.VersionCompact} {
			want := c.outcome
			if v == bundle.VersionCompact && c.outcome3 != "" {
				want = c.outcome3
			}
			t.Run(fmt.Sprintf("%s version %d", c.name, v), func(t *testing.T) {
				u, h := setup(t)
				if c.peers != "" {
					os.WriteFile(filepath.Join(h, "control", "ocmppeers"), []byte(c.peers+"\n"), 0o644)
				}
				file := filepath.Join(h, "in")
				ep := c.ep
				if ep == "" {
					ep = "bob"
				}
				writeVersion(t, file, ep, c.key, v, one)
				err := u.Unpack(file, "bob")
				if outcome(err) != want {
					t.Fatalf("%v: %s", err, logText(u))
				}
				if want != c.outcome && !strings.Contains(logText(u), "without ocmppeers no key is known") {
					t.Errorf("log %s does not say why", logText(u))
				}
				mb, _ := os.ReadFile(filepath.Join(h, "mail", "bob"))
				if got := strings.Contains(string(mb), "Subject: hello"); got != (want == "done") {
					t.Errorf("mailbox %q", mb)
				}
			})
		}
	}
}

// The proxy judges who signed a bundle on the raw file, before it
// decompresses the stream: a bundle nobody it trusts signed is refused
// as such even when its stream is a decompression bomb, which reading
// it first would have found (and spent the time on) instead.
func TestProxyRefusesBeforeDecompressing(t *testing.T) {
	ks, _ := newKey(t)
	_, stranger := newKey(t)
	for _, c := range []struct {
		name string
		key  ed25519.PrivateKey
		log  string
	}{
		{"unsigned", nil, "refused: unsigned"},
		{"an unknown key", stranger, "a key ocmppeers does not list for endpoint kiosk1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			u, h := setup(t)
			q, env := fakeQueue(t)
			u.Env = env
			for name, v := range map[string]string{"databytes": "1000", "bundlemax": "1000"} {
				os.WriteFile(filepath.Join(h, "control", name), []byte(v+"\n"), 0o644)
			}
			file := proxyInFor(t, h, "kiosk1", "kiosk1 "+ks)
			big := []msg{{"amina@kiosk1.example", []string{"r@internet.example"}, "Subject: big\n\n" + strings.Repeat("0", 4<<20)}}
			writeVersion(t, file, "kiosk1", c.key, bundle.Version, big)
			err := u.Unpack(file, "")
			if outcome(err) != "quarantined" || !strings.Contains(logText(u)+errText(err), c.log) || strings.Contains(errText(err), "decompression bomb") {
				t.Fatalf("%v; log %s", err, logText(u))
			}
			if n := queued(q); len(n) != 0 {
				t.Errorf("queued %v", n)
			}
		})
	}
}
