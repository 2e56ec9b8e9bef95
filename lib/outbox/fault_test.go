package outbox

import (
	"os"
	"strings"
	"testing"

	"omail/lib/crashpoint"
	"omail/lib/crashpoint/faulttest"
	"omail/lib/outcome"
)

// A disk error while an outbox entry is written or committed fails the
// transport (a deferral: the queue keeps the message), leaves the outbox
// as it was, and the next attempt makes the entry.
func TestPutFaults(t *testing.T) {
	saved := Crash
	t.Cleanup(func() { Crash = saved })
	faulttest.Run(t, func(t *testing.T) faulttest.Case {
		home := t.TempDir()
		m := msgFile(t, "Subject: x\n\n"+strings.Repeat("body\n", 20000))
		if err := Put(home, "kiosk1", "1700.5.42.1", m, "a@b", []string{"c@d"}); err != nil {
			t.Fatal(err)
		}
		return faulttest.Case{Dir: home, Try: func(h crashpoint.Hook) error {
			Crash = func() crashpoint.Hook { return h }
			r := Deliver(home, "kiosk1", "1700.5.42.2", m, "a@b", []string{"c@d"}, nil)
			if r.Status != outcome.OK {
				if h == nil || r.Status != outcome.Temp || !strings.Contains(r.Text, "(injected)") {
					t.Errorf("outcome %v %q", r.Status, r.Text)
				}
				return os.ErrInvalid // the outcome's text holds the fault
			}
			names, _ := List(home, "kiosk1")
			if len(names) != 2 {
				t.Errorf("entries %q", names)
			}
			return nil
		}}
	}, "outbox-")
}
