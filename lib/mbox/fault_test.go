package mbox

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"omail/lib/crashpoint"
	"omail/lib/crashpoint/faulttest"
)

// A disk error while a message is appended (in the middle of its bytes,
// or at the fsync) fails the delivery and cuts the mailbox back to the
// byte; the next attempt appends.
func TestAppendFaults(t *testing.T) {
	faulttest.Run(t, func(t *testing.T) faulttest.Case {
		dir := t.TempDir()
		path := filepath.Join(dir, "mbox")
		os.WriteFile(path, []byte("From a@b Thu Jan  1 00:00:00 1970\nSubject: before\n\n"), 0o600)
		return faulttest.Case{Dir: dir, Try: func(h crashpoint.Hook) error {
			a, err := OpenHooked(path, h)
			if err != nil {
				return err
			}
			if err := a.Add("s@x", []string{"Delivered-To: u"}, strings.NewReader(strings.Repeat("From line\n", 20000)), time.Unix(0, 0)); err != nil {
				a.Abort()
				return err
			}
			return a.Commit()
		}}
	}, "mbox-write", "mbox-fsync", "dotlock-link")
}

// A disk error while a dead holder's dotlock is taken aside fails the
// Open and leaves everything as it was; the next Open takes it over.
func TestTakeoverFaults(t *testing.T) {
	faulttest.Run(t, func(t *testing.T) faulttest.Case {
		dir := t.TempDir()
		path := filepath.Join(dir, "mbox")
		os.WriteFile(path, []byte("From a@b Thu Jan  1 00:00:00 1970\nSubject: before\n\nFrom a torn"), 0o600)
		os.WriteFile(path+".lock", []byte(lockOf(deadPid(t), 51)), 0o600)
		return faulttest.Case{Dir: dir, Try: func(h crashpoint.Hook) error {
			a, err := OpenHooked(path, h)
			if err != nil {
				return err
			}
			return a.Abort()
		}}
	}, "dotlock-takeover")
}

// A disk error while the dotlock's length is replaced after Recover cut
// a torn copy fails the attempt; the retry delivers the message once.
func TestRecoverRelockFault(t *testing.T) {
	date := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	whole := wholeCopy(t, date)
	faulttest.RunResume(t, func(t *testing.T) faulttest.Case {
		dir := t.TempDir()
		path := filepath.Join(dir, "mbox")
		os.WriteFile(path, []byte(foreign+whole[:70]), 0o600)
		return faulttest.Case{Dir: dir, Try: func(h crashpoint.Hook) error {
			a, err := OpenHooked(path, h)
			if err != nil {
				return err
			}
			msg := strings.NewReader(onceMsg)
			found, err := a.Recover(onceMarker, "a@b", oncePrefix, msg, msg.Size())
			if err != nil {
				a.Abort()
				return err
			}
			if !found {
				if err := a.Add("a@b", oncePrefix, strings.NewReader(onceMsg), date); err != nil {
					a.Abort()
					return err
				}
			}
			return a.Commit()
		}, Done: func(t *testing.T) {
			if got, _ := os.ReadFile(path); string(got) != foreign+whole {
				t.Fatalf("mailbox:\n%q\nwant\n%q", got, foreign+whole)
			}
		}}
	}, "dotlock-rewrite")
}
