package injectcmd

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"time"

	"omail/lib/control"
	"omail/lib/outbox"
	"omail/lib/quarantine"
	"omail/lib/queue"
)

// mailq is `mailq` / `omail-inject -bp`: the queue, then what waits in
// the OCMP outbox, per endpoint, so that mail handed to the outbox does
// not vanish from the listing; and a summary line when the outbox holds
// anything. With an endpoint, it lists that endpoint's entries one by
// one instead (mailq ENDPOINT).
func mailq(h, endpoint string, now time.Time, w io.Writer) error {
	ctl := control.New(h)
	if endpoint != "" {
		return listEndpoint(h, ctl, endpoint, now, w)
	}
	n, err := queue.New(h).ListN(w)
	if err != nil {
		return err
	}
	if err := listQuarantine(h, now, w); err != nil {
		return err
	}
	sums, err := outbox.Summarize(h, ctl)
	if err != nil {
		return err
	}
	if len(sums) == 0 {
		return nil // nothing in the outbox: the queue's listing says it all
	}
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "OCMP outbox:")
	total := 0
	for _, s := range sums {
		total += s.Messages
		held := ""
		if s.Held > 0 {
			held = fmt.Sprintf(" (%d held)", s.Held)
		}
		fmt.Fprintf(bw, "  %s  %d message(s)%s  %d bytes  oldest %s  %s\n",
			s.Endpoint, s.Messages, held, s.Bytes, queue.FormatAge(now, s.Oldest), uploadState(s))
	}
	fmt.Fprintf(bw, "queue: %d message(s); outbox: %d message(s) for %d endpoint(s)\n", n, total, len(sums))
	return bw.Flush()
}

func uploadState(s outbox.Summary) string {
	if s.UploadOK {
		return "upload directory present"
	}
	return "upload directory MISSING: " + s.Upload
}

// listEndpoint lists one endpoint's entries: ENDPOINT/NAME (the name
// omail-deliver -hold and the others take), age, size, sender, "held",
// then the recipients.
func listEndpoint(h string, ctl *control.Dir, ep string, now time.Time, w io.Writer) error {
	if err := outbox.CheckEndpoint(ep); err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	n, held := 0, 0
	for _, isHeld := range []bool{false, true} {
		list, open := outbox.List, outbox.Open
		if isHeld {
			list, open = outbox.ListHeld, outbox.OpenHeld
		}
		names, err := list(h, ep)
		if err != nil {
			return err
		}
		for _, name := range names {
			e, err := open(h, ep, name)
			if errors.Is(err, fs.ErrNotExist) {
				continue // packed meanwhile
			}
			if err != nil {
				fmt.Fprintf(bw, "%s/%s  unreadable: %v\n", ep, name, err)
				n++
				continue
			}
			e.Close()
			age := ""
			if d, err := outbox.Waiting(h, ep, name, isHeld, now); err == nil {
				age = queue.FormatAge(now, now.Add(-d))
			}
			mark, state := "", "waiting"
			if isHeld {
				mark, state = "  held", "held"
				held++
			}
			fmt.Fprintf(bw, "%s/%s  age %s  %d bytes  from <%s>%s\n", ep, name, age, e.Size, e.Sender, mark)
			for _, r := range e.Rcpts {
				fmt.Fprintf(bw, "    %-8s <%s>\n", state, r)
			}
			n++
		}
	}
	var s outbox.Summary
	var err error
	if s.Upload, s.UploadOK, err = outbox.UploadStatus(ctl, ep); err != nil {
		return err
	}
	fmt.Fprintf(bw, "outbox %s: %d message(s), %d held; %s\n", ep, n, held, uploadState(s))
	return bw.Flush()
}

// listQuarantine says what has been set aside and why, per endpoint:
// messages of its bundles the proxy would not relay (ocmpsenders,
// databytes), bundles omail-unpack refused, outbox entries omail-pack
// could not pack. Nothing there is delivered; a person looks (the
// programs' logs name each file).
func listQuarantine(h string, now time.Time, w io.Writer) error {
	sums, err := quarantine.Summarize(h)
	if err != nil || len(sums) == 0 {
		return err
	}
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "Quarantine (%s, never delivered):\n", filepath.Join(h, quarantine.Dir))
	for _, s := range sums {
		age := queue.FormatAge(now, s.Newest)
		switch s.Kind {
		case "message":
			fmt.Fprintf(bw, "  %s  %d message(s) refused, newest %s ago: %s\n", s.Endpoint, s.Files, age, s.Why)
		case "outbox":
			fmt.Fprintf(bw, "  %s  %d outbox entr(ies) omail-pack could not pack, newest %s ago\n", s.Endpoint, s.Files, age)
		default:
			fmt.Fprintf(bw, "  %d bundle(s) refused whole, newest %s ago\n", s.Files, age)
		}
	}
	return bw.Flush()
}
