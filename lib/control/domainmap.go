package control

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/colinmarc/cdb"
	"golang.org/x/net/idna"

	"omail/lib/cdbfile"
)

// DomainMap is a list file of "domain:value" lines (smtproutes,
// ocmproutes, virtualdomains, masquerade). A key "dom" matches that
// domain exactly, ".dom" matches any domain under dom, and an empty key
// matches every domain. The most specific entry wins, and among equals
// the first line in the file.
type DomainMap struct {
	exact map[string]string
	dflt  *string
}

// ParseDomainMap builds a DomainMap from list lines. A line without a
// colon is an error: a person wrote something we do not understand, and
// guessing would route mail somewhere they did not mean.
func ParseDomainMap(name string, lines []string) (*DomainMap, error) {
	m := &DomainMap{exact: map[string]string{}}
	for _, l := range lines {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			return nil, &Error{name, fmt.Errorf("line %q has no colon", l)}
		}
		k = NormalizeDomain(k)
		v = strings.TrimSpace(v)
		if k == "" {
			if m.dflt == nil {
				m.dflt = &v
			}
			continue
		}
		if _, dup := m.exact[k]; !dup {
			m.exact[k] = v
		}
	}
	return m, nil
}

// DomainMap reads a domain map control file; a missing file is empty.
func (d *Dir) DomainMap(name string) (*DomainMap, error) {
	lines, err := d.List(name)
	if err != nil {
		return nil, err
	}
	return ParseDomainMap(name, lines)
}

// Lookup finds the value for domain: exact, then ".parent" wildcards
// from the longest to the shortest, then the default entry. The key that
// matched is returned too ("" for the default).
func (m *DomainMap) Lookup(domain string) (value, key string, ok bool) {
	if m == nil {
		return "", "", false
	}
	domain = NormalizeDomain(domain)
	if v, ok := m.exact[domain]; ok {
		return v, domain, true
	}
	for i := 0; i < len(domain); i++ {
		if domain[i] == '.' {
			if v, ok := m.exact[domain[i:]]; ok {
				return v, domain[i:], true
			}
		}
	}
	if m.dflt != nil {
		return *m.dflt, "", true
	}
	return "", "", false
}

// Len is the number of entries, the default included.
func (m *DomainMap) Len() int {
	if m == nil {
		return 0
	}
	n := len(m.exact)
	if m.dflt != nil {
		n++
	}
	return n
}

// NormalizeDomain lower-cases a domain and removes white space and one
// trailing dot, so that "Example.COM." and "example.com" are one domain.
func NormalizeDomain(d string) string {
	d = strings.ToLower(strings.TrimSpace(d))
	if len(d) > 1 {
		d = strings.TrimSuffix(d, ".")
	}
	for i := 0; i < len(d); i++ {
		if d[i] >= 0x80 {
			// An internationalised domain is compared as its A-labels, so
			// that bücher.example and xn--bcher-kva.example are one domain
			// wherever omail looks a domain up (locals, routes, relay
			// rules). A name IDNA refuses stays as written: it matches
			// only itself.
			if a, err := idna.Lookup.ToASCII(d); err == nil {
				return strings.ToLower(a)
			}
			break
		}
	}
	return d
}

// DomainSet is a list of domains (locals, rcpthosts) for exact lookups.
type DomainSet map[string]bool

// DomainSet reads a list control file of domains.
func (d *Dir) DomainSet(name string) (DomainSet, error) {
	lines, err := d.List(name)
	if err != nil {
		return nil, err
	}
	s := DomainSet{}
	for _, l := range lines {
		s[NormalizeDomain(l)] = true
	}
	return s, nil
}

// Has reports whether domain is in the set.
func (s DomainSet) Has(domain string) bool { return s[NormalizeDomain(domain)] }

// CDB is an open constant database control file.
type CDB struct{ db *cdb.CDB }

// OpenCDB opens a .cdb control file. A missing file returns (nil, nil):
// lookups on a nil *CDB find nothing.
func (d *Dir) OpenCDB(name string) (*CDB, error) {
	db, err := cdbfile.Open(d.File(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, &Error{name, err}
	}
	return &CDB{db}, nil
}

// Get returns the value stored under key and whether it is there.
func (c *CDB) Get(key string) (string, bool, error) {
	if c == nil {
		return "", false, nil
	}
	v, err := c.db.Get([]byte(key))
	if err != nil {
		return "", false, err
	}
	return string(v), v != nil, nil
}

// Close releases the file.
func (c *CDB) Close() error {
	if c == nil {
		return nil
	}
	return c.db.Close()
}
