package packer

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"omail/lib/bundle"
	"omail/lib/control"
	"omail/lib/dict"
	"omail/lib/eventlog"
	"omail/lib/internal/testfake"
	"omail/lib/outbox"
)

func TestUrgent(t *testing.T) {
	for _, c := range []struct {
		head string
		want bool
	}{
		{"Priority: urgent\n\nbody", true},
		{"Subject: x\npriority:   URGENT  \n\n", true},
		{"X-Priority: 1\n\n", true},
		{"X-Priority: 1 (Highest)\r\n\r\n", true},
		{"x-priority:1(Highest)\n\n", true},
		{"Subject: a\nX-Priority:\n 1\n\n", true}, // folded
		{"X-Priority: 1", true},                   // the whole message is this header
		{"Priority: normal\n\n", false},
		{"Priority: non-urgent\n\n", false},
		{"X-Priority: 10\n\n", false},
		{"X-Priority: 1.5\n\n", false},
		{"X-Priority: 3 (Normal)\n\n", false},
		{"Priority: urgent\n more words\n\n", false}, // the whole value counts
		{"Subject: x\n\nPriority: urgent\n", false},  // in the body
		{"Subject: x\n\nX-Priority: 1\n", false},     // in the body
		{"X-Priority-Note: 1\n\n", false},
		{"Subject: Priority: urgent\n\n", false},
		{" Priority: urgent\n\n", false},                                                // a continuation of nothing
		{"Subject: " + strings.Repeat("x", 5000) + "\nPriority: urgent\n\n", true},      // after a long line
		{"Priority: urgent\n " + strings.Repeat("x", 5000) + "\n\n", false},             // continued too long
		{strings.Repeat("Received: x\n", headLimit/12) + "Priority: urgent\n\n", false}, // past headLimit
		{"", false},
	} {
		for _, oneByte := range []bool{false, true} {
			r := strings.NewReader(c.head)
			got, err := urgent(r)
			if oneByte {
				got, err = urgent(iotest.OneByteReader(strings.NewReader(c.head)))
			}
			if err != nil || got != c.want {
				t.Errorf("urgent(%.60q) = %v, %v; want %v", c.head, got, err, c.want)
			}
		}
	}
	if _, err := urgent(iotest.ErrReader(errors.New("disk"))); err == nil {
		t.Error("a read error was not reported")
	}
}

func TestOrder(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	o := ordering{small: 100, starve: time.Hour, now: now}
	at := func(ago time.Duration) time.Time { return now.Add(-ago) }
	msgs := []source{
		{label: "big-old", size: 1000, since: at(2 * time.Minute)},
		{label: "small-new", size: 10, since: at(time.Minute)},
		{label: "big-starved", size: 5000, since: at(2 * time.Hour)},
		{label: "small-old", size: 100, since: at(3 * time.Minute)},
		{label: "urgent-big", size: 9000, since: at(0), urgent: true},
		{label: "starved-older", size: 10, since: at(3 * time.Hour)},
		{label: "big-new", size: 101, since: at(time.Minute)},
		{label: "urgent-old", size: 1, since: at(time.Hour), urgent: true},
	}
	o.sort(msgs)
	var got []string
	for _, m := range msgs {
		got = append(got, m.label)
	}
	want := "urgent-old urgent-big starved-older big-starved small-old small-new big-old big-new"
	if strings.Join(got, " ") != want {
		t.Errorf("order %v\nwant  %s", got, want)
	}
}

// TestPackOrder: the bundles of one pass, in the order they are
// written, hold small mail first, big mail later, urgent mail before
// both, and mail that waited past ocmpstarve before anything newer.
func TestPackOrder(t *testing.T) {
	p, h := setup(t)
	ctl := func(name, v string) { os.WriteFile(filepath.Join(h, "control", name), []byte(v+"\n"), 0o644) }
	ctl("bundlemax", "10000")
	ctl("ocmpsmall", "1000")
	ctl("ocmpstarve", "3600")
	now := time.Unix(1_800_000_000, 0)
	p.Now = func() time.Time { return now }
	put := func(id string, size int, head string, age time.Duration) {
		msg := filepath.Join(h, "m"+id)
		body := head + "Subject: " + id + "\n\n" + strings.Repeat("x", size)
		os.WriteFile(msg, []byte(body), 0o644)
		if err := outbox.Put(h, "k1", id, msg, "a@b", []string{"c@d"}); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(filepath.Join(outbox.Path(h, "k1"), id), now.Add(-age), now.Add(-age))
	}
	put("1big", 20000, "", 10*time.Minute)
	put("2small", 100, "", 5*time.Minute)
	put("3small", 100, "", time.Minute)
	put("4urgent", 100, "X-Priority: 1 (Highest)\n", 0)
	log := &testfake.Log{}
	p.Log = eventlog.New(log, "omail-pack")
	if err := p.Pass(); err != nil {
		t.Fatal(err)
	}
	if got := packedOrder(log.String()); got != "4urgent 2small 3small | 1big" {
		t.Errorf("packed %q\n%s", got, log.String())
	}

	// The big one again, now waiting longer than ocmpstarve: it goes
	// before the small ones that came after it.
	log = &testfake.Log{}
	p.Log = eventlog.New(log, "omail-pack")
	put("5big", 20000, "", 2*time.Hour)
	put("6small", 100, "", time.Minute)
	if err := p.Pass(); err != nil {
		t.Fatal(err)
	}
	if got := packedOrder(log.String()); got != "5big | 6small" {
		t.Errorf("packed %q\n%s", got, log.String())
	}
}

// packedOrder reads the log of a pass: the entries of each bundle in
// the order written, bundles separated by "|".
func packedOrder(log string) string {
	var out []string
	last := ""
	for _, l := range strings.Split(log, "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && f[1] == "bundle" && f[3] == "entry" {
			if last != "" && f[2] != last {
				out = append(out, "|")
			}
			last = f[2]
			out = append(out, f[4])
		}
	}
	return strings.Join(out, " ")
}

func TestCompressionSettings(t *testing.T) {
	p, h := setup(t)
	ctl := func(name, v string) { os.WriteFile(filepath.Join(h, "control", name), []byte(v+"\n"), 0o644) }
	p.ctl = control.New(h)
	for _, c := range []struct {
		comp, dict string
		want       bundle.Options
		bad        bool
	}{
		{"", "", bundle.Options{Compression: bundle.Zstd}, false},
		{"best", "", bundle.Options{Compression: bundle.Best}, false},
		{"", "1869414401", bundle.Options{Compression: bundle.Zstd, Dict: dict.Current}, false},
		{"best", "1869414401", bundle.Options{Compression: bundle.Best, Dict: dict.Current}, false},
		{"gzip", "1869414401", bundle.Options{Compression: bundle.Gzip}, false},
		{"zstd", "none", bundle.Options{Compression: bundle.Zstd}, false},
		{"zstd", "0", bundle.Options{Compression: bundle.Zstd}, false},
		{"gzip", "", bundle.Options{Compression: bundle.Gzip}, false},
		{"xz", "", bundle.Options{}, true},
		{"zstd", "12345", bundle.Options{}, true},
		{"zstd", "latest", bundle.Options{}, true},
	} {
		os.Remove(filepath.Join(h, "control", "bundlecompression"))
		os.Remove(filepath.Join(h, "control", "bundledict"))
		if c.comp != "" {
			ctl("bundlecompression", c.comp)
		}
		if c.dict != "" {
			ctl("bundledict", c.dict)
		}
		got, err := p.compression()
		if (err != nil) != c.bad || !c.bad && got != c.want {
			t.Errorf("bundlecompression %q bundledict %q: %+v, %v", c.comp, c.dict, got, err)
		}
	}
}

// FuzzUrgent: whatever the bytes, urgent neither panics nor errs, and
// reads the same however the bytes arrive; what follows the end of the
// header never matters.
func FuzzUrgent(f *testing.F) {
	f.Add([]byte("Priority: urgent\n\n"), []byte("X-Priority: 1\n"))
	f.Add([]byte("Subject: a\nX-Priority:\n 1 (Highest)\r\n\r\n"), []byte(""))
	f.Add([]byte("X-Priority: 10"), []byte("Priority: urgent"))
	f.Add([]byte(" \t:\n\n"), []byte("\n"))
	f.Fuzz(func(t *testing.T, head, body []byte) {
		got, err := urgent(strings.NewReader(string(head)))
		if err != nil {
			t.Fatal(err)
		}
		again, err := urgent(iotest.OneByteReader(strings.NewReader(string(head))))
		if err != nil || again != got {
			t.Fatalf("one byte at a time: %v, %v; at once %v", again, err, got)
		}
		// A header ended by an empty line: the body after it is not read.
		if len(head) < headLimit/2 && !strings.Contains(string(head), "\n\n") && !strings.Contains(string(head), "\r") {
			h := string(head) + "\n\n"
			a, _ := urgent(strings.NewReader(h))
			b, _ := urgent(strings.NewReader(h + string(body)))
			if a != b {
				t.Fatalf("the body changed the answer: %v, then %v", a, b)
			}
		}
	})
}

// A bundle is version 2 exactly when one of its messages has an
// envelope address that is not ASCII.
func TestBundleVersion(t *testing.T) {
	ascii := source{sender: "a@b.example", rcpts: []string{"c@d.example"}}
	for _, c := range []struct {
		msgs []source
		want int
	}{
		{[]source{ascii}, bundle.Version},
		{[]source{ascii, {sender: "jürgen@köln.example", rcpts: []string{"c@d.example"}}}, bundle.VersionUTF8},
		{[]source{{sender: "", rcpts: []string{"c@d.example", "jörg@bücher.example"}}}, bundle.VersionUTF8},
	} {
		if got := version(c.msgs); got != c.want {
			t.Errorf("version(%+v) = %d, want %d", c.msgs, got, c.want)
		}
	}
}
