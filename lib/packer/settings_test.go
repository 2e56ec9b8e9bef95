package packer

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"omail/lib/bundle"
	"omail/lib/control"
	"omail/lib/outbox"
)

// bundleformat 3 asks for the compact format (zstd only); 1, empty or
// missing: versions 1 and 2 as before; anything else stops the pass.
func TestFormatSettings(t *testing.T) {
	p, h := setup(t)
	p.ctl = control.New(h)
	for _, c := range []struct {
		format, comp string
		compact, bad bool
	}{
		{"", "", false, false},
		{"1", "", false, false},
		{"3", "", true, false},
		{"3", "best", true, false},
		{"3", "gzip", false, true},
		{"1", "gzip", false, false},
		{"2", "", false, true},
		{"compact", "", false, true},
	} {
		for name, v := range map[string]string{"bundleformat": c.format, "bundlecompression": c.comp} {
			os.Remove(filepath.Join(h, "control", name))
			if v != "" {
				os.WriteFile(filepath.Join(h, "control", name), []byte(v+"\n"), 0o644)
			}
		}
		got, err := p.compression()
		if (err != nil) != c.bad || !c.bad && got.Compact != c.compact {
			t.Errorf("bundleformat %q bundlecompression %q: %+v, %v", c.format, c.comp, got, err)
		}
	}
}

// With bundleformat 3 a pass writes version 3 bundles, signed, that
// read back whole.
func TestPackCompact(t *testing.T) {
	for _, comp := range []string{bundle.Zstd, bundle.Best} {
		p, h := setup(t)
		os.WriteFile(filepath.Join(h, "control", "bundleformat"), []byte("3\n"), 0o644)
		os.WriteFile(filepath.Join(h, "control", "bundlecompression"), []byte(comp+"\n"), 0o644)
		msg := filepath.Join(h, "m")
		os.WriteFile(msg, []byte("Subject: x\n"), 0o644)
		if err := outbox.Put(h, "k1", "1", msg, "a@b", []string{"c@d"}); err != nil {
			t.Fatal(err)
		}
		if err := p.Pass(); err != nil {
			t.Fatal(err)
		}
		if got := readBundles(t, h, "k1"); len(got) != 1 || got[0] != "a@b>c@d:Subject: x\n" {
			t.Errorf("%s: bundles hold %q", comp, got)
		}
		files, _ := filepath.Glob(filepath.Join(h, "ocmp", "k1", "mail", "upload", "*"))
		for _, f := range files {
			fd, err := os.Open(f)
			if err != nil {
				t.Fatal(err)
			}
			hd, _, err := bundle.Verify(fd, homeKey(t, h))
			fd.Close()
			if err != nil || hd.Version != bundle.VersionCompact {
				t.Errorf("%s: %s: version %d, %v", comp, f, hd.Version, err)
			}
		}
	}
}

// pollinterval as -watch waits it: a value too big for a Duration waits
// a century, not nothing (an overflow to a negative wait made passes run
// back to back); 0, garbage or nothing waits the default minute.
func TestPollInterval(t *testing.T) {
	p, h := setup(t)
	const century = 100 * 365 * 24 * time.Hour
	for v, want := range map[string]time.Duration{
		"": time.Minute, "0": time.Minute, "x": time.Minute, "-5": time.Minute, "300": 300 * time.Second,
		"3153600000": century, "10000000000": century, "9223372036854775807": century,
	} {
		os.WriteFile(filepath.Join(h, "control", "pollinterval"), []byte(v+"\n"), 0o644)
		if got := p.pollInterval(); got != want {
			t.Errorf("pollinterval %q: %v, want %v", v, got, want)
		}
	}
}
