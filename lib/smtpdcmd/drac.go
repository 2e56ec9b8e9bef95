package smtpdcmd

import (
	"fmt"
	"io"
	"time"

	"omail/lib/control"
	"omail/lib/drac"
	"omail/lib/qexit"
)

// runDrac is omail-smtpd -drac IP, for a POP/IMAP server's post-login
// hook: IP may relay for dracexpiry seconds from now. It also removes
// the records that have expired, so that the directory stays as small
// as the number of recent logins. Exit 0 recorded, 100 when IP is not
// an IP address (never made into a file name), 111 when it cannot
// write the record.
func runDrac(ctl *control.Dir, args []string, now time.Time, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintf(stderr, "omail-smtpd: usage: omail-smtpd -drac IP\n")
		return qexit.Usage
	}
	ip, err := drac.ParseIP(args[0])
	if err != nil {
		fmt.Fprintf(stderr, "omail-smtpd: -drac: %v\n", err)
		return qexit.Perm
	}
	t, err := drac.Load(ctl)
	if err != nil {
		fmt.Fprintf(stderr, "omail-smtpd: -drac: %v\n", err)
		return qexit.Temp
	}
	pruned, err := t.Record(ip, now)
	if err != nil {
		fmt.Fprintf(stderr, "omail-smtpd: -drac %s: %v\n", ip, err)
		return qexit.Temp
	}
	fmt.Fprintf(stderr, "omail-smtpd: drac %s may relay for %d seconds; %d expired records removed\n", ip, int64(t.Expiry/time.Second), pruned)
	return qexit.OK
}
