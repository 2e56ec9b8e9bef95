package queue

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

// The listing shows the next try the deliverer will make: a next try
// further ahead than MaxBackoff (a clock set back since the deferral) is
// due now, one within it is shown as it is.
func TestListShowsTheNextTryTheDelivererMakes(t *testing.T) {
	q := newQueue(t)
	q.Now = func() time.Time { return time.Unix(1700000000, 0) }
	now := q.now().Unix()
	for _, c := range []struct {
		id   string
		next int64
	}{
		{"1.0.1.1", now + int64(48*time.Hour/time.Second)}, // written while the clock ran 2 days ahead
		{"2.0.1.1", now + int64(3*time.Hour/time.Second)},
		{"3.0.1.1", now + int64(MaxBackoff/time.Second)},
	} {
		st := &State{Queued: now, Sender: "s@x", Rcpts: []Rcpt{{Addr: "u@x", Status: Todo, Attempts: 1, NextTry: c.next}}}
		if err := os.WriteFile(q.Path(DirInfo, c.id), st.Marshal(), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	if err := q.List(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"1.0.1.1  age 0s  -1 bytes  from <s@x>\n    deferred <u@x>  1 attempt(s), next try in 0s\n",
		"2.0.1.1  age 0s  -1 bytes  from <s@x>\n    deferred <u@x>  1 attempt(s), next try in 3h00m\n",
		"3.0.1.1  age 0s  -1 bytes  from <s@x>\n    deferred <u@x>  1 attempt(s), next try in 4h00m\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("listing lacks %q:\n%s", want, out.String())
		}
	}
}

func TestDueAt(t *testing.T) {
	const now = 1700000000
	max := int64(MaxBackoff / time.Second)
	for _, c := range []struct{ due, want int64 }{
		{now - 60, now - 60},
		{now + 60, now + 60},
		{now + max, now + max},
		{now + max + 1, now},
		{now + 30*86400, now},
	} {
		if got := DueAt(c.due, now); got != c.want {
			t.Errorf("DueAt(now%+d) = now%+d, want now%+d", c.due-now, got-now, c.want-now)
		}
	}
}
