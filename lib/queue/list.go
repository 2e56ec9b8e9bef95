package queue

import (
	"bufio"
	"fmt"
	"io"
	"time"
)

// List writes the queue listing that `mailq` and `omail-inject -bp`
// show: one line per message (id, age, size, sender), then one line per
// recipient with its state.
func (q *Queue) List(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	now := q.now()
	n := 0
	// One message at a time: a listing of 100,000 holds their ids, not
	// their states.
	err := q.each(func(e Entry) {
		n++
		if e.Err != nil {
			fmt.Fprintf(bw, "%s  unreadable: %v\n", e.ID, e.Err)
			return
		}
		st := e.State
		fmt.Fprintf(bw, "%s  age %s  %d bytes  from <%s>\n", e.ID, age(now, time.Unix(st.Queued, 0)), e.Size, st.Sender)
		for _, r := range st.Rcpts {
			fmt.Fprintf(bw, "    %-8s <%s>%s\n", rcptState(r), r.Addr, rcptDetail(now, r))
		}
	})
	if err != nil {
		return err
	}
	if n == 0 {
		fmt.Fprintln(bw, "Mail queue is empty")
	} else {
		fmt.Fprintf(bw, "%d message(s) in the queue\n", n)
	}
	return bw.Flush()
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
		s = fmt.Sprintf("  %d attempt(s), next try in %s", r.Attempts, age(time.Unix(r.NextTry, 0), now))
	}
	if r.LastError != "" {
		s += "  last error: " + r.LastError
	}
	return s
}

// age formats a duration coarsely, as a person reads a queue listing.
func age(now, then time.Time) string {
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
