package outbox

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"omail/lib/control"
	"omail/lib/envelope"
	"omail/lib/masquerade"
	"omail/lib/outcome"
)

func msgFile(t testing.TB, body string) string {
	p := filepath.Join(t.TempDir(), "msg")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPutIdempotent(t *testing.T) {
	home := t.TempDir()
	m := msgFile(t, "Subject: x\n\nbody\n")
	for i := 0; i < 3; i++ {
		if err := Put(home, "kiosk1", "1700.5.42.1", m, "a@b", []string{"c@d", "e@f"}); err != nil {
			t.Fatal(err)
		}
	}
	names, _ := List(home, "kiosk1")
	if len(names) != 1 {
		t.Fatalf("entries %v", names)
	}
	// a subset again: nothing new
	Put(home, "kiosk1", "1700.5.42.1", m, "a@b", []string{"e@f"})
	// a new recipient: an entry of its own
	if err := Put(home, "kiosk1", "1700.5.42.1", m, "a@b", []string{"e@f", "g@h"}); err != nil {
		t.Fatal(err)
	}
	names, _ = List(home, "kiosk1")
	if strings.Join(names, ",") != "1700.5.42.1,1700.5.42.1-2" {
		t.Fatalf("entries %v", names)
	}
	e, err := Open(home, "kiosk1", names[1])
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(e)
	e.Close()
	if e.Sender != "a@b" || strings.Join(e.Rcpts, ",") != "g@h" || string(b) != "Subject: x\n\nbody\n" || e.Size != int64(len(b)) {
		t.Errorf("entry %+v %q", e, b)
	}
	if err := Remove(home, "kiosk1", names); err != nil {
		t.Fatal(err)
	}
	if names, _ = List(home, "kiosk1"); len(names) != 0 {
		t.Errorf("left %v", names)
	}
	eps, _ := Endpoints(home)
	if len(eps) != 1 || eps[0] != "kiosk1" {
		t.Errorf("endpoints %v", eps)
	}
}

func TestPutRefuses(t *testing.T) {
	home := t.TempDir()
	m := msgFile(t, "x")
	for _, ep := range []string{"", "..", ".", "a/b", "a b", "x\n"} {
		if err := Put(home, ep, "1", m, "a", []string{"b"}); !errors.Is(err, ErrBadEndpoint) {
			t.Errorf("endpoint %q: %v", ep, err)
		}
	}
	for _, id := range []string{"", ".x", "a/b", "a-2"} {
		if err := Put(home, "k", id, m, "a", []string{"b"}); err == nil {
			t.Errorf("id %q accepted", id)
		}
	}
	if err := Put(home, "k", "1", m, "a\nb", []string{"b"}); err == nil {
		t.Error("newline in sender accepted")
	}
	if err := Put(home, "k", "1", m, "a", nil); err == nil {
		t.Error("no recipients accepted")
	}
}

func TestRoute(t *testing.T) {
	home := t.TempDir()
	os.MkdirAll(filepath.Join(home, "control"), 0o755)
	os.WriteFile(filepath.Join(home, "control", "ocmproutes"),
		[]byte("kiosk.example:%u\n.village.example:vk-%u\nproxy.example:proxy\nbad.example:../x\n"), 0o644)
	ctl := control.New(home)
	for _, c := range []struct {
		rcpt, ep string
		ok, err  bool
	}{
		{"Alice@Kiosk.Example", "alice", true, false},
		{"bob@a.village.example", "vk-bob", true, false},
		{"c@proxy.example", "proxy", true, false},
		{"d@elsewhere.example", "", false, false},
		{"../x@kiosk.example", "", true, true},
		{"x@bad.example", "", true, true},
	} {
		ep, ok, err := Route(ctl, c.rcpt)
		if ep != c.ep || ok != c.ok || (err != nil) != c.err {
			t.Errorf("%s: %q %v %v", c.rcpt, ep, ok, err)
		}
		if c.err && !errors.Is(err, ErrBadEndpoint) {
			t.Errorf("%s: error %v is not ErrBadEndpoint", c.rcpt, err)
		}
	}
	os.WriteFile(filepath.Join(home, "control", "ocmproutes"), []byte(":uplink\n"), 0o644)
	if ep, ok, _ := Route(ctl, "anyone@anywhere"); ep != "uplink" || !ok {
		t.Errorf("default: %q %v", ep, ok)
	}
}

// FuzzOpen: the entry parser never panics, and a parsed entry's size
// matches what can be read.
func FuzzOpen(f *testing.F) {
	f.Add([]byte("OMAIL-OUTBOX 1\nF a@b\nT c@d\n\nmessage\n"))
	f.Add([]byte("OMAIL-OUTBOX 1\nF \nT c@d\nT e\n\n"))
	f.Add([]byte("OMAIL-OUTBOX 1\nF a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		home := t.TempDir()
		os.MkdirAll(Path(home, "k"), 0o755)
		os.WriteFile(filepath.Join(Path(home, "k"), "1"), data, 0o644)
		e, err := Open(home, "k", "1")
		if err != nil {
			return
		}
		defer e.Close()
		b, _ := io.ReadAll(e)
		if int64(len(b)) != e.Size || len(e.Rcpts) == 0 {
			t.Fatalf("size %d read %d rcpts %d", e.Size, len(b), len(e.Rcpts))
		}
		for _, a := range append([]string{e.Sender}, e.Rcpts...) {
			if err := envelope.CheckAddress(a); err != nil {
				t.Fatalf("opened an entry a bundle cannot carry: %q: %v", a, err)
			}
		}
	})
}

// ValidName accepts the names Put gives entries and nothing else, so
// that omail-pack journals only names it can read back.
func TestValidName(t *testing.T) {
	for name, want := range map[string]bool{
		"1700000000.1.1.1": true, "1700000000.1.1.1-2": true, "1700000000.1.1.1-12": true,
		"a_b+c=d": true, "copy 1": false, "": false, ".journal": false, "x-": false,
		"x-0": false, "x-02": false, "x-2-3": false, "x-2a": false, "x\n": false,
		"x\"y": false, "1700000000.1.1.1-1234567890": false,
	} {
		if got := ValidName(name); got != want {
			t.Errorf("ValidName(%q) = %v", name, got)
		}
	}
}

func TestPutMasqueraded(t *testing.T) {
	home := t.TempDir()
	m := msgFile(t, "From: Amina <amina@kiosk.example>\nTo: friend@example.org\nSubject: x\n\nFrom amina@kiosk.example, in the body: untouched\n")
	masq, err := masquerade.Parse([]string{"kiosk.example:village.org"})
	if err != nil {
		t.Fatal(err)
	}
	if err := PutMasqueraded(home, "kiosk1", "1700.5.42.1", m, "amina@kiosk.example", []string{"friend@example.org"}, masq); err != nil {
		t.Fatal(err)
	}
	e, err := Open(home, "kiosk1", "1700.5.42.1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(e)
	e.Close()
	want := "From: Amina <amina@village.org>\nTo: friend@example.org\nSubject: x\n\nFrom amina@kiosk.example, in the body: untouched\n"
	if e.Sender != "amina@village.org" || string(b) != want || e.Size != int64(len(b)) {
		t.Errorf("entry %+v\n%q", e, b)
	}
}

// Deliver reports Put's outcome: delivered once the entry is durable, a
// temporary failure (never a loss) when it cannot be written.
func TestDeliver(t *testing.T) {
	home := t.TempDir()
	m := msgFile(t, "Subject: x\n\nbody\n")
	r := Deliver(home, "kiosk1", "1700.5.42.1", m, "a@b", []string{"c@d"}, nil)
	if r.Status != outcome.OK || r.Text != "in the outbox for OCMP endpoint kiosk1" {
		t.Fatalf("%+v", r)
	}
	if names, _ := List(home, "kiosk1"); len(names) != 1 {
		t.Fatalf("entries %v", names)
	}
	r = Deliver(home, "kiosk1", "1700.5.42.2", filepath.Join(home, "no-such-message"), "a@b", []string{"c@d"}, nil)
	if r.Status != outcome.Temp || !strings.HasPrefix(r.Text, "outbox kiosk1: ") {
		t.Fatalf("unreadable message: %+v", r)
	}
	if names, _ := List(home, "kiosk1"); len(names) != 1 {
		t.Fatalf("entries after a failure %v", names)
	}
}
