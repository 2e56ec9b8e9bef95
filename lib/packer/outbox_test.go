package packer

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"omail/lib/bundle"
	"omail/lib/crashpoint"
	"omail/lib/outbox"
)

// putEntry puts a one-line message for rcpts into ep's outbox as id.
func putEntry(t *testing.T, h, ep, id, body string, rcpts ...string) {
	t.Helper()
	msg := filepath.Join(t.TempDir(), "m")
	os.WriteFile(msg, []byte(body), 0o644)
	if err := outbox.Put(h, ep, id, msg, "s@x", rcpts); err != nil {
		t.Fatal(err)
	}
}

// entries lists what is left in ep's outbox.
func entries(t *testing.T, h, ep string) string {
	names, err := outbox.List(h, ep)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(names, ",")
}

// quarantined lists the quarantine's files and their contents.
func quarantined(t *testing.T, h string) []string {
	ents, _ := os.ReadDir(filepath.Join(h, "quarantine"))
	var out []string
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(h, "quarantine", e.Name()))
		out = append(out, e.Name()+"="+string(b))
	}
	return out
}

// A message with more recipients for one endpoint than one bundle
// record takes (the queue allows 99,999 of up to 1024 bytes, a record
// 1 MiB of them) is packed as several records of one bundle, each
// recipient once, and mail queued beside it goes too.
func TestPackManyRecipients(t *testing.T) {
	p, h := setup(t)
	putEntry(t, h, "k1", "1700000000.1.1.1", "Subject: before\n", "a@far.example")
	var rcpts []string
	for i := 0; i < 20000; i++ {
		rcpts = append(rcpts, fmt.Sprintf("subscriber-%05d-of-the-village-newsletter@far.example", i))
	}
	putEntry(t, h, "k1", "1700000000.2.1.1", "Subject: news\n", rcpts...)
	if err := p.Pass(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(h, "ocmp", "k1", "mail", "upload", "*"))
	if len(files) != 1 {
		t.Fatalf("%d bundles, want 1", len(files))
	}
	got := map[string]int{}
	records := 0
	for _, m := range readBundles(t, h, "k1") {
		env, body, _ := strings.Cut(m, ":")
		_, to, _ := strings.Cut(env, ">")
		if body == "Subject: news\n" {
			records++
		}
		for _, r := range strings.Split(to, ",") {
			got[r]++
		}
	}
	if records != 2 {
		t.Errorf("the newsletter is %d records, want 2", records)
	}
	if len(got) != len(rcpts)+1 || got["a@far.example"] != 1 {
		t.Errorf("%d recipients in the bundle, want %d", len(got), len(rcpts)+1)
	}
	for _, r := range rcpts {
		if got[r] != 1 {
			t.Fatalf("%s is in the bundle %d times", r, got[r])
		}
	}
	if left := entries(t, h, "k1"); left != "" {
		t.Errorf("outbox still holds %s", left)
	}
}

func TestRcptGroups(t *testing.T) {
	long := strings.Repeat("x", 1000)
	var many, big []string
	for i := 0; i < bundle.MaxRcpts+1; i++ {
		many = append(many, "a")
	}
	for i := 0; i < 2*bundle.MaxRcptBytes/len(long)+1; i++ {
		big = append(big, long)
	}
	for _, c := range []struct {
		rcpts []string
		want  []int
	}{
		{[]string{"a"}, []int{1}},
		{many, []int{bundle.MaxRcpts, 1}},
		{big, []int{1048, 1048, 2}},
	} {
		var sizes []int
		n := 0
		for _, g := range rcptGroups(c.rcpts) {
			sizes = append(sizes, len(g))
			total := 0
			for _, r := range g {
				total += len(r)
			}
			if len(g) == 0 || len(g) > bundle.MaxRcpts || total > bundle.MaxRcptBytes {
				t.Errorf("a group of %d recipients, %d bytes", len(g), total)
			}
			n += len(g)
		}
		if fmt.Sprint(sizes) != fmt.Sprint(c.want) || n != len(c.rcpts) {
			t.Errorf("groups %v, want %v", sizes, c.want)
		}
	}
}

// An entry whose envelope a bundle cannot carry (a control character
// in an address) goes to the quarantine, and the endpoint's other
// entries are packed: it does not stop them pass after pass.
func TestPackDamagedEnvelope(t *testing.T) {
	p, h := setup(t)
	for _, id := range []string{"1700000000.1.1.1", "1700000000.3.1.1"} {
		putEntry(t, h, "k1", id, "Subject: "+id+"\n", "r@far.example")
	}
	bad := "OMAIL-OUTBOX 1\nF a@b\nT bad\x01rcpt@x\n\nSubject: bad\n"
	os.WriteFile(filepath.Join(outbox.Path(h, "k1"), "1700000000.2.1.1"), []byte(bad), 0o640)
	if err := p.Pass(); err != nil {
		t.Fatal(err)
	}
	if got := readBundles(t, h, "k1"); len(got) != 2 {
		t.Errorf("bundles hold %q", got)
	}
	if left := entries(t, h, "k1"); left != "" {
		t.Errorf("outbox still holds %s", left)
	}
	if q := quarantined(t, h); len(q) != 1 || !strings.HasSuffix(q[0], "="+bad) {
		t.Errorf("quarantine holds %q", q)
	}
}

// An entry that cannot be read whole when its bundle is written (cut
// shorter since it was measured; replaced by garbage) stops that bundle
// only: the bundle is written again without it, the shorter one stays
// for the next pass, which packs it, and the garbage goes to the
// quarantine.
func TestPackUnreadableEntry(t *testing.T) {
	for _, tc := range []struct {
		name, content string
		pass1         bool // the first pass reports no trouble
		quarantined   int
	}{
		{"shorter", "OMAIL-OUTBOX 1\nF s@x\nT r@far.example\n\nSubj", false, 0},
		{"garbage", "garbage\n", true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, h := setup(t)
			ids := []string{"1700000000.1.1.1", "1700000000.2.1.1", "1700000000.3.1.1"}
			for _, id := range ids {
				putEntry(t, h, "k1", id, "Subject: "+id+"\n"+strings.Repeat("body\n", 100), "r@far.example")
			}
			done := false
			p.Crash = func(point string) {
				if point == "?fault pack-bundle-write" && !done {
					done = true
					os.WriteFile(filepath.Join(outbox.Path(h, "k1"), ids[1]), []byte(tc.content), 0o640)
				}
			}
			if err := p.Pass(); (err == nil) != tc.pass1 {
				t.Errorf("first pass: %v", err)
			}
			got := readBundles(t, h, "k1")
			if len(got) != 2 || strings.Contains(strings.Join(got, ""), ids[1]) {
				t.Errorf("first pass packed %q", got)
			}
			if q := quarantined(t, h); len(q) != tc.quarantined {
				t.Errorf("quarantine holds %q", q)
			}
			p.Crash = crashpoint.Hook(nil)
			if err := p.Pass(); err != nil {
				t.Fatal(err)
			}
			if left := entries(t, h, "k1"); left != "" {
				t.Errorf("outbox still holds %s", left)
			}
			want := 2
			if tc.quarantined == 0 {
				want = 3
			}
			if got := readBundles(t, h, "k1"); len(got) != want {
				t.Errorf("after the second pass: %d messages, want %d", len(got), want)
			}
		})
	}
}

// Two damaged entries of the same name, one pass after the other: the
// quarantine keeps both.
func TestQuarantineKeepsBoth(t *testing.T) {
	p, h := setup(t)
	os.MkdirAll(outbox.Path(h, "k1"), 0o750)
	for _, garbage := range []string{"garbage one\n", "garbage two\n"} {
		os.WriteFile(filepath.Join(outbox.Path(h, "k1"), "1700000000.1.1.1"), []byte(garbage), 0o640)
		if err := p.Pass(); err != nil {
			t.Fatal(err)
		}
	}
	q := quarantined(t, h)
	if strings.Join(q, "|") != "outbox-k1-1700000000.1.1.1=garbage one\n|outbox-k1-1700000000.1.1.1.2=garbage two\n" {
		t.Errorf("quarantine holds %q", q)
	}
}

// A file in the outbox whose name is not an entry's (a person's copy,
// "copy 1") is not packed and goes to the quarantine: its name never
// reaches a journal, and the entries beside it are packed.
func TestPackForeignName(t *testing.T) {
	p, h := setup(t)
	putEntry(t, h, "k1", "1700000000.1.1.1", "Subject: 1\n", "r@x")
	b, _ := os.ReadFile(filepath.Join(outbox.Path(h, "k1"), "1700000000.1.1.1"))
	os.WriteFile(filepath.Join(outbox.Path(h, "k1"), "copy 1"), b, 0o640)
	p.Crash = func(point string) {
		if point == "pack-journal" {
			j, err := readJournal(filepath.Join(outbox.Path(h, "k1"), outbox.JournalName))
			if err != nil || strings.Join(j.entries, ",") != "1700000000.1.1.1" {
				t.Errorf("journal: %+v, %v", j, err)
			}
		}
	}
	if err := p.Pass(); err != nil {
		t.Fatal(err)
	}
	if got := readBundles(t, h, "k1"); len(got) != 1 {
		t.Errorf("bundles hold %q", got)
	}
	if left := entries(t, h, "k1"); left != "" {
		t.Errorf("outbox still holds %s", left)
	}
	if q := quarantined(t, h); len(q) != 1 || !strings.HasPrefix(q[0], "outbox-k1-copy 1=") {
		t.Errorf("quarantine holds %q", q)
	}
}
