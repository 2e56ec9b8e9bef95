package queue

import (
	"bufio"
	"fmt"
	"io"
	"time"
)

// List writes the queue listing that `mailq` and `omail-inject -bp`
// show: one line per message (id, age, size, sender, "held" when held),
// then one line per recipient with its state.
func (q *Queue) List(w io.Writer) error {
	_, err := q.ListN(w)
	return err
}

// ListN is List, and reports how many messages it listed.
func (q *Queue) ListN(w io.Writer) (int, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	now := q.now()
	n := 0
	heldIDs, err := q.HeldIDs()
	if err != nil {
		return 0, err
	}
	held := make(map[string]bool, len(heldIDs))
	for _, id := range heldIDs {
		held[id] = true
	}
	// One message at a time: a listing of 100,000 holds their ids, not
	// their states.
	err = q.each(func(e Entry) {
		n++
		if e.Err != nil {
			fmt.Fprintf(bw, "%s  unreadable: %v\n", e.ID, e.Err)
			return
		}
		st := e.State
		mark := ""
		if held[e.ID] {
			mark = "  held"
		}
		fmt.Fprintf(bw, "%s  age %s  %d bytes  from <%s>%s\n", e.ID, FormatAge(now, time.Unix(st.Queued, 0)), e.Size, st.Sender, mark)
		for _, r := range st.Rcpts {
			state := rcptState(r)
			if held[e.ID] && r.Status == Todo {
				state = "held"
			}
			fmt.Fprintf(bw, "    %-8s <%s>%s\n", state, r.Addr, rcptDetail(now, r))
		}
	})
	if err != nil {
		return n, err
	}
	if n == 0 {
		fmt.Fprintln(bw, "Mail queue is empty")
	} else {
		fmt.Fprintf(bw, "%d message(s) in the queue\n", n)
	}
	return n, bw.Flush()
}

func rcptState(r Rcpt) string {
	switch {
	case r.Status == Todo && r.Attempts == 0:
		return "pending"
	case r.Status == Todo:
		return "deferred"
	}
	return r.Status.String()
}

func rcptDetail(now time.Time, r Rcpt) string {
	s := ""
	if r.Status == Todo && r.Attempts > 0 {
		next := DueAt(r.NextTry, now.Unix())
		s = fmt.Sprintf("  %d attempt(s), next try in %s", r.Attempts, FormatAge(time.Unix(next, 0), now))
	}
	if r.LastError != "" {
		s += "  last error: " + r.LastError
	}
	return s
}

// MaxBackoff is the longest wait between two tries of a recipient
// (lib/qmanager's back-off).
const MaxBackoff = 4 * time.Hour

// DueAt is the time a recipient or message due at due is tried, seen at
// now (Unix seconds): due itself, unless it is further ahead than
// MaxBackoff, which only a clock set back since can make (an NTP or RTC
// step, a kiosk that queued mail while its clock ran ahead): then now, so
// that the step is never added to the wait. The deliverer schedules by
// it (lib/qmanager), and the listing shows it.
func DueAt(due, now int64) int64 {
	if due > now+int64(MaxBackoff/time.Second) {
		return now
	}
	return due
}

// FormatAge formats the time from then to now coarsely, as a person
// reads a queue listing: 42s, 17m, 5h03m, 12d.
func FormatAge(now, then time.Time) string {
	d := now.Sub(then)
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}
