package masquerade

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"testing/iotest"
)

func testMap(t testing.TB) *Map {
	m, err := Parse([]string{"kiosk1.local:example.org", ".village.test:example.net"})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestAddress(t *testing.T) {
	m := testMap(t)
	for in, want := range map[string]string{
		"joe@kiosk1.local":     "joe@example.org",
		"joe@KIOSK1.local":     "joe@example.org",
		"joe@a.b.village.test": "joe@example.net",
		"joe@village.test":     "joe@village.test",
		"joe@other.test":       "joe@other.test",
		"":                     "",
		"joe":                  "joe",
		"\"a@b\"@kiosk1.local": "\"a@b\"@example.org",
	} {
		if got := m.Address(in); got != want {
			t.Errorf("Address(%q) = %q, want %q", in, got, want)
		}
	}
	var empty *Map
	if empty.Address("joe@kiosk1.local") != "joe@kiosk1.local" || !empty.Empty() {
		t.Error("nil map rewrote")
	}
}

func TestCopy(t *testing.T) {
	m := testMap(t)
	in := "Received: from x by y; joe@kiosk1.local\n" +
		"From: \"Joe @kiosk1.local\" <joe@kiosk1.local> (joe@kiosk1.local)\n" +
		"reply-to: a@x.village.test,\n\tb@kiosk1.local\n" +
		"Sender : s@kiosk1.local\n" +
		"To: joe@kiosk1.local\n" +
		"\n" +
		"From: body@kiosk1.local\n"
	want := "Received: from x by y; joe@kiosk1.local\n" +
		"From: \"Joe @kiosk1.local\" <joe@example.org> (joe@kiosk1.local)\n" +
		"reply-to: a@example.net,\n\tb@example.org\n" +
		"Sender : s@example.org\n" +
		"To: joe@kiosk1.local\n" +
		"\n" +
		"From: body@kiosk1.local\n"
	for _, crlf := range []bool{false, true} {
		i, w := in, want
		if crlf {
			i, w = strings.ReplaceAll(in, "\n", "\r\n"), strings.ReplaceAll(want, "\n", "\r\n")
		}
		var out bytes.Buffer
		n, err := m.Copy(&out, iotest.OneByteReader(strings.NewReader(i)))
		if err != nil {
			t.Fatal(err)
		}
		if out.String() != w || n != int64(out.Len()) {
			t.Errorf("crlf=%v got\n%q\nwant\n%q", crlf, out.String(), w)
		}
	}
	// No final newline, header only.
	var out bytes.Buffer
	if _, err := m.Copy(&out, strings.NewReader("From: joe@kiosk1.local")); err != nil || out.String() != "From: joe@example.org" {
		t.Errorf("header-only: %q %v", out.String(), err)
	}
	// An over-long field goes out untouched.
	long := "From: joe@kiosk1.local\n\t" + strings.Repeat("x", maxField) + "\n\nbody\n"
	out.Reset()
	if _, err := m.Copy(&out, strings.NewReader(long)); err != nil || out.String() != long {
		t.Errorf("long field changed (len %d) %v", out.Len(), err)
	}
}

func FuzzCopy(f *testing.F) {
	f.Add([]byte("From: joe@kiosk1.local\n\nbody\n"))
	f.Add([]byte("From: \"q\\\"@x\" <a@b.village.test> (c@kiosk1.local)\r\nTo: x\r\n\r\n"))
	f.Add([]byte("no header here\nFrom: a@kiosk1.local\n"))
	m := testMap(f)
	f.Fuzz(func(t *testing.T, msg []byte) {
		var out bytes.Buffer
		n, err := m.Copy(&out, bytes.NewReader(msg))
		if err != nil || n != int64(out.Len()) {
			t.Fatalf("err %v n %d len %d", err, n, out.Len())
		}
		// Nothing to rewrite: nothing changes.
		if !bytes.Contains(bytes.ToLower(msg), []byte("kiosk1.local")) && !bytes.Contains(bytes.ToLower(msg), []byte("village.test")) {
			if !bytes.Equal(out.Bytes(), msg) {
				t.Fatalf("changed %q to %q", msg, out.Bytes())
			}
		}
		// The line structure is kept.
		if bytes.Count(out.Bytes(), []byte("\n")) != bytes.Count(msg, []byte("\n")) {
			t.Fatalf("lines changed: %q -> %q", msg, out.Bytes())
		}
		// The body (after the first blank line) is untouched.
		if i := bytes.Index(msg, []byte("\n\n")); i >= 0 {
			if !bytes.HasSuffix(out.Bytes(), msg[i:]) {
				t.Fatalf("body changed: %q -> %q", msg, out.Bytes())
			}
		}
	})
}

// A line that does not hold two domains is refused, naming the line: a
// '#' comment after the value (control files have whole-line comments
// only) would otherwise become the sender's domain, and bounce.
func TestParseRefusesBadLines(t *testing.T) {
	for _, l := range []string{
		".village.example:example.org    # every host under village.example",
		"kiosk1.local:example.org#x",
		"kiosk1.local:joe@example.org",
		"kiosk1.local:<example.org>",
		"kiosk one.local:example.org",
		"kiosk1.local:example..org",
		"kiosk1.local:example.org.",
		"kiosk1.local:example.org:25",
	} {
		_, err := Parse([]string{"good.example:example.org", l})
		if err == nil || !strings.Contains(err.Error(), "control file masquerade: line ") {
			t.Errorf("%q: error %v", l, err)
		}
		if strings.Contains(l, "#") && !strings.Contains(err.Error(), "a comment must be a line of its own") {
			t.Errorf("%q: error %v", l, err)
		}
	}
	for _, l := range []string{"kiosk1.local:example.org", ".village.test:example.net", ":example.org", "inner.village.test:", "[192.0.2.1]:example.org", "kiosk.local:bücher.example"} {
		if _, err := Parse([]string{l}); err != nil {
			t.Errorf("%q: %v", l, err)
		}
	}
}

// The example of docs/remote-delivery.md works as it is written.
func TestDocExample(t *testing.T) {
	b, err := os.ReadFile("../../docs/remote-delivery.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "\n## Masquerade: `control/masquerade`\n")
	if !ok {
		t.Fatal("no masquerade section")
	}
	var lines []string
	for _, l := range strings.Split(rest, "\n") {
		if v, ok := strings.CutPrefix(l, "    "); ok {
			if v != "" && v[0] != '#' {
				lines = append(lines, v)
			}
		} else if len(lines) > 0 {
			break
		}
	}
	m, err := Parse(lines)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Address("joe@kiosk.village.example"); got != "joe@example.org" {
		t.Errorf("rewritten to %q", got)
	}
}
