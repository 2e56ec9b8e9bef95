// Package outbox is where omail-deliver leaves mail routed to an OCMP
// endpoint (control file ocmproutes) and where omail-pack takes it from:
// $OMAIL_HOME/outbox/<endpoint>/<entry>, one file per message and
// endpoint, holding the message's envelope (its sender and its
// recipients for that endpoint) and then the message.
//
// An entry file is
//
//	OMAIL-OUTBOX 1\n
//	F <sender>\n
//	T <recipient>\n   (one or more)
//	\n
//	<the message, as in the queue>
//
// and appears whole or not at all: it is written to a temporary name
// (starting with a dot, which List ignores), fsynced, renamed, and the
// directory fsynced, before Put returns.
package outbox

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"omail/lib/bundle"
	"omail/lib/control"
	"omail/lib/crashpoint"
	"omail/lib/envelope"
	"omail/lib/masquerade"
	"omail/lib/outcome"
	"omail/lib/safefile"
)

// Dir is the outbox's directory under OMAIL_HOME.
const Dir = "outbox"

const magic = "OMAIL-OUTBOX 1"

// ErrBadEndpoint is a route that gives an endpoint name we will not use
// as a directory name: the recipient cannot be delivered by OCMP (a
// permanent failure for that recipient).
var ErrBadEndpoint = errors.New("bad OCMP endpoint name")

// CheckEndpoint reports whether an endpoint name is safe as a directory
// name under ocmpdir and the outbox: not empty, no slash, no leading dot
// (so not "." or ".."), no white space or control characters.
func CheckEndpoint(ep string) error {
	if err := bundle.ValidEndpoint(ep); err != nil {
		return fmt.Errorf("%w: %v", ErrBadEndpoint, err)
	}
	return nil
}

// checkID: entry names are the queue id, then "-N" for a second entry
// of the same message (see Put), so ids may not hold '-' or start with a
// dot.
func checkID(id string) error {
	if id == "" || len(id) > 200 || id[0] == '.' {
		return fmt.Errorf("outbox: bad message id %q", id)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '+' || c == '=') {
			return fmt.Errorf("outbox: bad message id %q", id)
		}
	}
	return nil
}

// ValidName reports whether name can be an entry Put made: a queue id
// (checkID), perhaps followed by "-N" for a second entry of it. Other
// files in an outbox are not entries: omail-pack sets them aside.
func ValidName(name string) bool {
	id, n, two := strings.Cut(name, "-")
	if checkID(id) != nil {
		return false
	}
	if !two {
		return true
	}
	if n == "" || n[0] == '0' || len(n) > 9 {
		return false
	}
	for i := 0; i < len(n); i++ {
		if n[i] < '0' || n[i] > '9' {
			return false
		}
	}
	return true
}

// Path is the directory of one endpoint's outbox.
func Path(home, endpoint string) string { return filepath.Join(home, Dir, endpoint) }

// Route finds the OCMP endpoint for a recipient in control/ocmproutes
// ("dom:endpoint", ".dom:endpoint", ":endpoint"; "%u" in the endpoint is
// the recipient's local part, lower-cased). ok is false when no line
// matches. An endpoint that is not a safe name is ErrBadEndpoint.
func Route(ctl *control.Dir, rcpt string) (endpoint string, ok bool, err error) {
	m, err := ctl.DomainMap("ocmproutes")
	if err != nil {
		return "", false, err
	}
	local, domain := rcpt, ""
	if i := strings.LastIndexByte(rcpt, '@'); i >= 0 {
		local, domain = rcpt[:i], rcpt[i+1:]
	}
	v, _, ok := m.Lookup(domain)
	if !ok {
		return "", false, nil
	}
	ep := strings.ReplaceAll(v, "%u", strings.ToLower(local))
	if err := CheckEndpoint(ep); err != nil {
		return "", true, fmt.Errorf("ocmproutes gives %q for %s: %w", ep, rcpt, err)
	}
	return ep, true, nil
}

// Put puts the message in the file msgPath into endpoint's outbox, for
// the recipients rcpts, and returns once the entry is durable; only then
// may the caller mark those recipients done. id is the queue id.
//
// Put is idempotent: when entries of the same id are still in the outbox
// and hold every one of rcpts, it does nothing (a deliverer that crashed
// after Put but before marking the recipients done does no harm). When
// some of rcpts are new, they get an entry of their own, "<id>-N". Once
// omail-pack has packed an entry, a second Put makes a second copy: that
// is the window documented in docs/omail-pack.md.
func Put(home, endpoint, id, msgPath, sender string, rcpts []string) error {
	return PutMasqueraded(home, endpoint, id, msgPath, sender, rcpts, nil)
}

// Deliver is the queue manager's OCMP transport (wired by
// delivercmd.transports into qmanager.Transports.OCMP): PutMasqueraded,
// and its outcome for every one of rcpts. An entry that could not be
// made durable is a temporary failure: the queue keeps the message.
func Deliver(home, endpoint, id, msgPath, sender string, rcpts []string, masq *masquerade.Map) outcome.Result {
	if err := PutMasqueraded(home, endpoint, id, msgPath, sender, rcpts, masq); err != nil {
		return outcome.Tempf("outbox %s: %v", endpoint, err)
	}
	return outcome.Result{Status: outcome.OK, Text: "in the outbox for OCMP endpoint " + endpoint}
}

// PutMasqueraded is Put with sender domains rewritten on the way out, as
// the masquerade control file says: the envelope sender, and the From:,
// Sender: and Reply-To: fields (lib/masquerade). A nil masq is Put.
func PutMasqueraded(home, endpoint, id, msgPath, sender string, rcpts []string, masq *masquerade.Map) error {
	sender = masq.Address(sender)
	if err := CheckEndpoint(endpoint); err != nil {
		return err
	}
	if err := checkID(id); err != nil {
		return err
	}
	if len(rcpts) == 0 {
		return errors.New("outbox: no recipients")
	}
	for _, a := range append([]string{sender}, rcpts...) {
		if err := envelope.CheckAddress(a); err != nil {
			return err
		}
	}
	dir := Path(home, endpoint)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	names, err := List(home, endpoint)
	if err != nil {
		// The directory was just made: only an I/O error gets here; the delivery defers (Deliver: outcome.Temp).
		return err
	}
	// Held entries (admin.go) count too: they are still to be sent, and
	// their names must stay free for their release.
	held, err := ListHeld(home, endpoint)
	if err != nil {
		return err
	}
	for _, n := range held {
		names = append(names, filepath.Join(HeldDir, n))
	}
	have := map[string]bool{}
	used := map[string]bool{}
	for _, n := range names {
		base := filepath.Base(n)
		if base != id && !strings.HasPrefix(base, id+"-") {
			continue
		}
		used[base] = true
		e, err := Open(home, endpoint, n)
		if errors.Is(err, fs.ErrNotExist) {
			// Packed by omail-pack between List and Open: its recipients get a new entry (the window docs/omail-pack.md names).
			continue // packed meanwhile
		}
		if err != nil {
			return err
		}
		e.Close()
		for _, r := range e.Rcpts {
			have[r] = true
		}
	}
	var missing []string
	for _, r := range rcpts {
		if !have[r] {
			missing = append(missing, r)
			have[r] = true
		}
	}
	if len(missing) == 0 {
		return nil
	}
	name := id
	for i := 2; used[name]; i++ {
		name = fmt.Sprintf("%s-%d", id, i)
	}
	in, err := os.Open(msgPath)
	if err != nil {
		return err
	}
	defer in.Close()
	f, err := safefile.Create(filepath.Join(dir, name), 0o640)
	if err != nil {
		// The outbox directory is full or unwritable: nothing was created; the delivery defers.
		return err
	}
	defer f.Abort()
	h := Crash()
	bw := bufio.NewWriterSize(h.Writer("outbox-write", f), 64<<10)
	fmt.Fprintf(bw, "%s\nF %s\n", magic, sender)
	for _, r := range missing {
		fmt.Fprintf(bw, "T %s\n", r)
	}
	bw.WriteString("\n")
	if _, err := masq.Copy(bw, in); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		// Disk full or I/O error: the deferred Abort removes the temporary file; no entry, the delivery defers.
		return err
	}
	// fsync, rename into place, fsync of the directory: the entry is
	// there, whole, or not at all.
	return h.Op("outbox-commit", f.Commit)
}

// Crash returns the test hooks at Put's file operations: the process's
// (crashpoint.Process), as Put is called deep inside omail-deliver's
// transports, which have no hooks to hand on. Tests replace it.
var Crash = crashpoint.Process

// Endpoints lists the endpoints that have an outbox directory.
func Endpoints(home string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(home, Dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() && CheckEndpoint(e.Name()) == nil {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// List returns the names of an endpoint's entries, oldest queue id
// first (by name, as queue ids start with the time). Names starting with
// a dot (temporary files, omail-pack's journal) are not entries.
func List(home, endpoint string) ([]string, error) {
	ents, err := os.ReadDir(Path(home, endpoint))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if n := e.Name(); n[0] != '.' && e.Type().IsRegular() {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out, nil
}

// Entry is an open outbox entry: its envelope, and the message to read.
type Entry struct {
	Name   string
	Sender string
	Rcpts  []string
	Size   int64 // of the message
	f      *os.File
	r      io.Reader
}

// Read reads the message.
func (e *Entry) Read(b []byte) (int, error) { return e.r.Read(b) }

// Close closes the entry's file.
func (e *Entry) Close() error { return e.f.Close() }

// ErrCorrupt is an entry file that is not in the entry format.
var ErrCorrupt = errors.New("corrupt outbox entry")

// Open opens an entry and reads its envelope.
func Open(home, endpoint, name string) (*Entry, error) {
	f, err := os.Open(filepath.Join(Path(home, endpoint), name))
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		// fstat of an open file fails only with EIO: reported, the entry stays where it is.
		f.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(f, 64<<10)
	e := &Entry{Name: name, f: f, r: br}
	var off int64
	line := func() (string, error) {
		l, err := br.ReadSlice('\n')
		off += int64(len(l))
		if err != nil {
			return "", fmt.Errorf("%w %s/%s: %v", ErrCorrupt, endpoint, name, err)
		}
		return string(l[:len(l)-1]), nil
	}
	bad := func(why string) (*Entry, error) {
		f.Close()
		return nil, fmt.Errorf("%w %s/%s: %s", ErrCorrupt, endpoint, name, why)
	}
	if l, err := line(); err != nil || l != magic {
		return bad("no header")
	}
	l, err := line()
	if err != nil || !strings.HasPrefix(l, "F ") {
		return bad("no sender")
	}
	e.Sender = l[2:]
	// The checks a bundle's reader applies to each address (Put made
	// them too): an entry that fails them cannot travel, and would
	// stop every bundle it is put in.
	if err := envelope.CheckAddress(e.Sender); err != nil {
		return bad(fmt.Sprintf("sender: %v", err))
	}
	for {
		l, err := line()
		if err != nil {
			return bad("envelope cut short")
		}
		if l == "" {
			break
		}
		if !strings.HasPrefix(l, "T ") || len(l) == 2 {
			return bad("bad recipient line")
		}
		if err := envelope.CheckAddress(l[2:]); err != nil {
			return bad(fmt.Sprintf("recipient %d: %v", len(e.Rcpts)+1, err))
		}
		e.Rcpts = append(e.Rcpts, l[2:])
	}
	if len(e.Rcpts) == 0 {
		return bad("no recipients")
	}
	e.Size = fi.Size() - off
	return e, nil
}

// Remove deletes packed entries and makes the deletion durable.
func Remove(home, endpoint string, names []string) error {
	dir := Path(home, endpoint)
	for _, n := range names {
		if err := os.Remove(filepath.Join(dir, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return safefile.SyncDir(dir)
}
