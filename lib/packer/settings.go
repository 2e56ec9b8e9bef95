package packer

import (
	"fmt"
	"strconv"
	"time"

	"omail/lib/bundle"
	"omail/lib/clock"
	"omail/lib/control"
	"omail/lib/dict"
)

// compression reads bundlecompression, bundledict (missing or "none":
// no dictionary) and bundleformat.
func (p *Packer) compression() (bundle.Options, error) {
	var o bundle.Options
	var err error
	if o.Compression, err = p.ctl.Line("bundlecompression"); err != nil {
		return o, err
	}
	switch o.Compression {
	case "":
		o.Compression = bundle.Zstd
	case bundle.Zstd, bundle.Best, bundle.Gzip:
	default:
		return o, fmt.Errorf("control file bundlecompression: %q is not zstd, best or gzip", o.Compression)
	}
	d, err := p.ctl.Line("bundledict")
	if err != nil {
		return o, err
	}
	// No dictionary unless asked for: a receiver older than the
	// dictionary would quarantine what it cannot read, so a sender
	// turns it on once its receivers have it (docs/BUNDLES.md).
	if d != "" {
		if o.Dict, err = dict.Parse(d); err != nil {
			return o, fmt.Errorf("control file bundledict: %v", err)
		}
	}
	if o.Compression == bundle.Gzip {
		o.Dict = 0 // gzip has no dictionaries
	}
	// The compact format only once the receivers read it, as the
	// dictionary (docs/BUNDLES.md, Version 3).
	switch f, err := p.ctl.Line("bundleformat"); {
	case err != nil:
		return o, err
	case f == "3" && o.Compression == bundle.Gzip:
		return o, fmt.Errorf("control file bundleformat: 3 is zstd only, and bundlecompression is gzip")
	case f == "3":
		o.Compact = true
	case f != "1":
		return o, fmt.Errorf("control file bundleformat: %q is not 1 or 3", f)
	}
	return o, nil
}

// ordering reads ocmpsmall and ocmpstarve.
func (p *Packer) ordering() (ordering, error) {
	small, err := p.count("ocmpsmall")
	if err != nil {
		return ordering{}, err
	}
	starve, err := p.count("ocmpstarve")
	if err != nil {
		return ordering{}, err
	}
	return ordering{small: small, starve: seconds(starve), now: clock.Now(p.Now)}, nil
}

// pollInterval is how long Watch waits between passes: pollinterval
// seconds (missing, unreadable or not above 0: 60).
func (p *Packer) pollInterval() time.Duration {
	if n, err := control.New(p.Home).Int("pollinterval"); err == nil && n > 0 {
		return seconds(n)
	}
	return 60 * time.Second
}

// seconds is n seconds, n at least 0, as a Duration, at most a century:
// more would overflow it (to a negative, which is no wait at all).
func seconds(n int64) time.Duration {
	return time.Duration(min(n, 100*365*86400)) * time.Second
}

// count reads a control file holding a number of bytes or seconds
// (missing or empty: its default in lib/control).
func (p *Packer) count(name string) (int64, error) {
	l, err := p.ctl.Line(name)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(l, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("control file %s: %q is not a number of 0 or more", name, l)
	}
	return n, nil
}
