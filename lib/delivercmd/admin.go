package delivercmd

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"omail/lib/crashpoint"
	"omail/lib/home"
	"omail/lib/outbox"
	"omail/lib/qexit"
	"omail/lib/qmanager"
	"omail/lib/queue"
)

// Queue administration:
//
//	omail-deliver -hold|-release|-delete|-retry ID... | -all | -from ADDR | -to ADDR
//
// acts on queued messages and OCMP outbox entries. An ID is a queue id
// as mailq prints it (the message in the queue and its outbox entries,
// ID and ID-N, in every endpoint), or ENDPOINT/NAME for one outbox entry
// (as `mailq ENDPOINT` prints it). -from and -to select by envelope
// sender or recipient (case does not matter; both given, both must
// match; <ADDR> as mailq prints it is ADDR, and -from '<>' or '' the
// null sender of bounces); -all selects everything. Safe while the
// daemon runs: see lib/qmanager/admin.go and docs/INTERNALS.md, "Held
// messages". Exit 0, 100 when an ID names nothing (the others are still
// acted on; a message named that the delivery in progress finished
// before the action took names nothing) or the command line is wrong,
// 111 for trouble worth trying again. A message selected by -all, -from
// or -to that finishes meanwhile is logged, and is not an error.

// adminModes are the actions, by option.
var adminModes = map[string]string{"-hold": "hold", "-release": "release", "-delete": "delete", "-retry": "retry"}

// selection is what the command line asks to act on.
type selection struct {
	ids            []string
	all            bool
	from, to       string
	fromSet, toSet bool
}

func (s *selection) byAddress() bool { return s.all || s.fromSet || s.toSet }

// matches reports whether an envelope is selected by -all/-from/-to.
func (s *selection) matches(sender string, rcpts []string) bool {
	if !s.byAddress() {
		return false
	}
	if s.fromSet && !strings.EqualFold(sender, s.from) {
		return false
	}
	if s.toSet {
		for _, r := range rcpts {
			if strings.EqualFold(r, s.to) {
				return true
			}
		}
		return false
	}
	return true
}

// bare is an address as given, without the one pair of angle brackets
// mailq shows it in: "<>" and "" are the null sender of bounces.
func bare(a string) string {
	if strings.HasPrefix(a, "<") && strings.HasSuffix(a, ">") {
		return a[1 : len(a)-1]
	}
	return a
}

func parseSelection(args []string) (*selection, error) {
	s := &selection{}
	for len(args) > 0 {
		a := args[0]
		args = args[1:]
		switch a {
		case "-all":
			s.all = true
		case "-from", "-to":
			if len(args) == 0 {
				return nil, fmt.Errorf("%s needs an address", a)
			}
			if a == "-from" {
				s.from, s.fromSet = bare(args[0]), true
			} else {
				if s.to = bare(args[0]); s.to == "" {
					return nil, errors.New("-to needs an address: a recipient is never empty")
				}
				s.toSet = true
			}
			args = args[1:]
		default:
			if strings.HasPrefix(a, "-") {
				return nil, fmt.Errorf("unknown option %s", a)
			}
			s.ids = append(s.ids, a)
		}
	}
	if len(s.ids) == 0 && !s.byAddress() {
		return nil, errors.New("no message named: give IDs, -all, -from ADDR or -to ADDR")
	}
	return s, nil
}

// entryRef is one outbox entry.
type entryRef struct {
	ep, name string
	held     bool
}

func (e entryRef) String() string { return e.ep + "/" + e.name }

// runAdmin is omail-deliver -hold, -release, -delete and -retry. It acts
// on the queue first, then on the outbox as it is after that: a hold
// or delete waits for the delivery in progress (lib/qmanager), which
// may hand the message to the outbox, and its entries are then acted on
// too.
func runAdmin(action string, args []string, h string, env home.Env, stderr io.Writer) int {
	sel, err := parseSelection(args)
	if err != nil {
		fmt.Fprintf(stderr, "omail-deliver: %v\n", err)
		return qexit.Usage
	}
	q := queue.New(h)
	q.Crash = crashpoint.New(env) // test hooks: admin-hold-noted
	if err := q.Check(); err != nil {
		fmt.Fprintf(stderr, "omail-deliver: queue not usable: %v\n", err)
		return qexit.Temp
	}
	m := &qmanager.Manager{Q: q, Home: h, Log: stderr}
	code := qexit.OK
	temp := func(err error) {
		fmt.Fprintf(stderr, "omail-deliver: %v\n", err)
		code = qexit.Temp
	}
	perm := func() {
		if code == qexit.OK {
			code = qexit.Perm
		}
	}

	// The queue: the messages selected, and those named.
	var ids []string
	if sel.byAddress() {
		err := q.Each(func(e queue.Entry) {
			if e.State != nil && sel.matches(e.State.Sender, e.State.Envelope().Rcpts) {
				ids = append(ids, e.ID)
			}
		})
		if err != nil {
			temp(err)
			return code
		}
	}
	named := map[string]bool{} // ids named that are queued
	for _, a := range sel.ids {
		if !strings.Contains(a, "/") && m.Queued(a) {
			ids, named[a] = append(ids, a), true
		}
	}
	finished := map[string]bool{} // queued when asked, finished before the action took
	ids = dedup(ids)
	if action == "hold" {
		// Every note first, then the waits: no message waits for
		// another's delivery in progress to be held.
		noted := ids[:0:0]
		for _, id := range ids {
			switch err := m.HoldNote(id); {
			case errors.Is(err, qmanager.ErrUnknown):
				finished[id] = true
				fmt.Fprintf(stderr, "msg %s: %v\n", id, qmanager.ErrFinished)
			case err != nil:
				temp(fmt.Errorf("msg %s: %w", id, err))
			default:
				noted = append(noted, id)
			}
		}
		ids = noted
	}
	for _, id := range ids {
		var err error
		switch action {
		case "hold":
			err = m.HoldConfirm(id)
		case "release":
			err = m.Release(id)
		case "retry":
			err = m.Retry(id)
		case "delete":
			err = m.Delete(id)
		}
		switch {
		case errors.Is(err, qmanager.ErrUnknown), errors.Is(err, qmanager.ErrFinished):
			finished[id] = true
			fmt.Fprintf(stderr, "msg %s: %v\n", id, qmanager.ErrFinished)
		case err != nil:
			temp(fmt.Errorf("msg %s: %w", id, err))
		}
	}

	// The outbox, as it is now.
	entries, err := outboxEntries(h)
	if err != nil {
		temp(err)
		return code
	}
	var picked []entryRef
	if sel.byAddress() {
		for _, e := range entries {
			en, err := openEntry(h, e)
			if err != nil {
				continue // packed meanwhile, or damaged: omail-pack's
			}
			if sel.matches(en.Sender, en.Rcpts) {
				picked = append(picked, e)
			}
			en.Close()
		}
	}
	for _, a := range sel.ids {
		found := named[a] && !finished[a]
		if ep, name, ok := strings.Cut(a, "/"); ok {
			for _, e := range entries {
				if e.ep == ep && e.name == name {
					picked, found = append(picked, e), true
				}
			}
		} else {
			for _, e := range entries {
				if e.name == a || strings.HasPrefix(e.name, a+"-") {
					picked, found = append(picked, e), true
				}
			}
		}
		switch {
		case found:
		case finished[a]:
			// Delivered or bounced while we waited: the ID names nothing
			// now, and what was asked did not happen.
			perm()
		default:
			fmt.Fprintf(stderr, "omail-deliver: %s: no such message in the queue or the outbox\n", a)
			perm()
		}
	}
	if len(picked) > 0 {
		if err := actOnOutbox(action, h, picked, stderr); err != nil {
			temp(err)
		}
	}
	return code
}

// actOnOutbox does one action on outbox entries, under the outbox's lock
// (never while omail-pack is packing them); an entry it cannot change is
// reported and the others are still acted on.
func actOnOutbox(action, h string, picked []entryRef, stderr io.Writer) error {
	unlock, err := outbox.Lock(h)
	if err != nil {
		return err
	}
	defer unlock()
	seen := map[entryRef]bool{}
	failed := false
	for _, e := range picked {
		if seen[e] {
			continue
		}
		seen[e] = true
		var err error
		switch {
		case action == "hold" && !e.held:
			err = outbox.Hold(h, e.ep, e.name)
			if err == nil {
				fmt.Fprintf(stderr, "outbox %s held\n", e)
			}
		case action == "release" && e.held:
			err = outbox.Release(h, e.ep, e.name, time.Now())
			if err == nil {
				fmt.Fprintf(stderr, "outbox %s released\n", e)
			}
		case action == "delete":
			sender := ""
			if en, err := openEntry(h, e); err == nil {
				sender = en.Sender
				en.Close()
			}
			err = outbox.Delete(h, e.ep, e.name, e.held)
			if err == nil {
				fmt.Fprintf(stderr, "outbox %s deleted by the administrator, not bounced: from <%s>\n", e, sender)
			}
		case action == "retry":
			fmt.Fprintf(stderr, "outbox %s waits for omail-pack, which packs everything not held at each pass\n", e)
		}
		if err != nil {
			// Go on with the others: each entry is its own action.
			fmt.Fprintf(stderr, "omail-deliver: outbox %s: %v\n", e, err)
			failed = true
		}
	}
	if failed {
		return errors.New("some outbox entries were not changed")
	}
	return nil
}

// outboxEntries lists every outbox entry, held ones included.
func outboxEntries(h string) ([]entryRef, error) {
	eps, err := outbox.Endpoints(h)
	if err != nil {
		return nil, err
	}
	var out []entryRef
	for _, ep := range eps {
		names, err := outbox.List(h, ep)
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			out = append(out, entryRef{ep: ep, name: n})
		}
		held, err := outbox.ListHeld(h, ep)
		if err != nil {
			return nil, err
		}
		for _, n := range held {
			out = append(out, entryRef{ep: ep, name: n, held: true})
		}
	}
	return out, nil
}

func openEntry(h string, e entryRef) (*outbox.Entry, error) {
	if e.held {
		return outbox.OpenHeld(h, e.ep, e.name)
	}
	return outbox.Open(h, e.ep, e.name)
}

// dedup keeps the first of each id, in order.
func dedup(ids []string) []string {
	seen := map[string]bool{}
	out := ids[:0]
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}
