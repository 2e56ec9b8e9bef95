package quarantine

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Summary counts one kind of file set aside: the messages of an
// endpoint's bundles that the proxy would not relay, whole bundles
// omail-unpack refused, or an endpoint's outbox entries omail-pack could
// not pack. mailq shows them, so that an endpoint whose mail is being
// refused is seen without reading the log.
type Summary struct {
	Kind     string // "message", "bundle" or "outbox"
	Endpoint string // "" for bundles: their file names do not say
	Files    int
	Newest   time.Time
	Why      string // the newest refused message's reason (messages only)
}

// The first lines omail-unpack writes in a refused message's file
// (unpacker.quarantineMessage).
const (
	whyField    = "X-Omail-Quarantined: "
	bundleField = "X-Omail-Bundle: "
)

// Summarize reads home's quarantine directory. A refused message's
// endpoint and reason come from the first lines of its file (at most
// 4 KiB read per file); anything else is counted by its name.
func Summarize(home string) ([]Summary, error) {
	dir := filepath.Join(home, Dir)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	sums := map[[2]string]*Summary{}
	for _, e := range ents {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
			continue // a copy Move has not finished
		}
		fi, err := e.Info()
		if err != nil {
			continue // gone meanwhile
		}
		kind, ep, why := "bundle", "", ""
		if rest, ok := strings.CutPrefix(e.Name(), "outbox-"); ok {
			kind = "outbox"
			ep, _, _ = strings.Cut(rest, "-")
		} else if w, e2, ok := refusedMessage(filepath.Join(dir, e.Name())); ok {
			kind, ep, why = "message", e2, w
		}
		k := [2]string{kind, ep}
		s := sums[k]
		if s == nil {
			s = &Summary{Kind: kind, Endpoint: ep}
			sums[k] = s
		}
		s.Files++
		if fi.ModTime().After(s.Newest) {
			s.Newest = fi.ModTime()
			if why != "" {
				s.Why = why
			}
		}
	}
	out := make([]Summary, 0, len(sums))
	for _, s := range sums {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind > out[j].Kind // outbox, message, bundle
		}
		return out[i].Endpoint < out[j].Endpoint
	})
	return out, nil
}

// refusedMessage reads the reason and endpoint from the head of a file
// omail-unpack wrote for a message it would not relay.
func refusedMessage(path string) (why, endpoint string, ok bool) {
	f, err := os.Open(path)
	if err != nil {
		return "", "", false
	}
	defer f.Close()
	b := make([]byte, 4096)
	n, _ := io.ReadFull(f, b)
	b = b[:n]
	line := func() string {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return ""
		}
		l := string(b[:i])
		b = b[i+1:]
		return l
	}
	w, ok1 := strings.CutPrefix(line(), whyField)
	bl, ok2 := strings.CutPrefix(line(), bundleField)
	if !ok1 || !ok2 {
		return "", "", false
	}
	_, ep, found := strings.Cut(bl, " from endpoint ")
	if !found {
		return "", "", false
	}
	return w, ep, true
}
