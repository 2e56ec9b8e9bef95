package qmanager

import (
	"errors"
	"io/fs"

	"omail/lib/clock"
	"omail/lib/drac"
)

// sweepDRAC removes expired relay-after-POP records ($OMAIL_HOME/drac/,
// written by omail-smtpd -drac), beside the outbox sweep: every -drac
// prunes too, but a machine whose users stop logging in would keep the
// last records for ever. No drac/ directory: nothing to do.
func (m *Manager) sweepDRAC() {
	t, err := drac.Load(m.Ctl)
	if err != nil {
		m.logf("warning: drac: %v", err)
		return
	}
	n, err := t.Prune(clock.Now(m.Now))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		m.logf("warning: drac: %v", err)
	}
	if n > 0 {
		m.logf("drac: removed %d expired record(s)", n)
	}
}
