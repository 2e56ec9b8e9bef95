package outbox

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"omail/lib/control"
)

// A held entry leaves List, which is what omail-pack packs from (lib/packer
// packs the names List returns), and comes back on release; Summarize
// counts both, and says whether the upload directory is there.
func TestHoldKeepsAnEntryFromThePacker(t *testing.T) {
	home := t.TempDir()
	msg := msgFile(t, "Subject: x\n\nbody\n")
	for _, id := range []string{"1.1.1.1", "1.1.1.2"} {
		if err := Put(home, "k1", id, msg, "a@b.example", []string{"u@k.example"}); err != nil {
			t.Fatal(err)
		}
	}
	unlock, err := Lock(home)
	if err != nil {
		t.Fatal(err)
	}
	if err := Hold(home, "k1", "1.1.1.1"); err != nil {
		t.Fatal(err)
	}
	unlock()
	names, _ := List(home, "k1")
	held, _ := ListHeld(home, "k1")
	if len(names) != 1 || names[0] != "1.1.1.2" || len(held) != 1 || held[0] != "1.1.1.1" {
		t.Fatalf("List %v, ListHeld %v", names, held)
	}
	if e, err := OpenHeld(home, "k1", "1.1.1.1"); err != nil || e.Sender != "a@b.example" {
		t.Fatalf("OpenHeld: %v", err)
	} else {
		e.Close()
	}
	eps, _ := Endpoints(home)
	if len(eps) != 1 {
		t.Errorf("endpoints %v: held/ must not look like one", eps)
	}
	ocmp := t.TempDir()
	os.MkdirAll(filepath.Join(home, "control"), 0o755)
	os.WriteFile(filepath.Join(home, "control", "ocmpdir"), []byte(ocmp+"\n"), 0o644)
	ctl := control.New(home)
	sums, err := Summarize(home, ctl)
	if err != nil || len(sums) != 1 {
		t.Fatalf("Summarize: %v, %v", sums, err)
	}
	s := sums[0]
	if s.Endpoint != "k1" || s.Messages != 2 || s.Held != 1 || s.UploadOK || s.Upload != filepath.Join(ocmp, "k1", "mail", "upload") || s.Bytes <= 0 {
		t.Errorf("summary %+v", s)
	}
	os.MkdirAll(s.Upload, 0o755)
	if sums, _ = Summarize(home, ctl); !sums[0].UploadOK {
		t.Errorf("upload directory not seen: %+v", sums[0])
	}
	if err := Release(home, "k1", "1.1.1.1", time.Now()); err != nil {
		t.Fatal(err)
	}
	if names, _ = List(home, "k1"); len(names) != 2 {
		t.Errorf("after release: %v", names)
	}
	if d, err := Waiting(home, "k1", "1.1.1.1", false, time.Now().Add(time.Hour)); err != nil || d < time.Hour-time.Minute {
		t.Errorf("Waiting = %v, %v", d, err)
	}
	if err := Delete(home, "k1", "1.1.1.2", false); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", ".journal", "../x", "held"} {
		if Hold(home, "k1", bad) == nil || Delete(home, "k1", bad, false) == nil {
			t.Errorf("name %q accepted", bad)
		}
	}
	if names, _ = List(home, "k1"); len(names) != 1 {
		t.Errorf("after delete: %v", names)
	}
}

// A Put while an entry is held sees it: the same recipients again make
// nothing (a deliverer repeating itself after a crash), new ones get a
// name of their own, and the held entry can always be released.
func TestPutSeesHeldEntries(t *testing.T) {
	home := t.TempDir()
	msg := msgFile(t, "Subject: x\n\nbody\n")
	Put(home, "k1", "1.1.1.1", msg, "a@b.example", []string{"u@k.example"})
	Hold(home, "k1", "1.1.1.1")
	Put(home, "k1", "1.1.1.1", msg, "a@b.example", []string{"u@k.example"})
	if names, _ := List(home, "k1"); len(names) != 0 {
		t.Errorf("a held entry put again: %v", names)
	}
	Put(home, "k1", "1.1.1.1", msg, "a@b.example", []string{"v@k.example"})
	if names, _ := List(home, "k1"); len(names) != 1 || names[0] != "1.1.1.1-2" {
		t.Errorf("new recipient's entry: %v", names)
	}
	if err := Release(home, "k1", "1.1.1.1", time.Now()); err != nil {
		t.Error(err)
	}
}

// While omail-pack's journal says a pass was interrupted, an entry may
// be in a bundle about to be published: it is not held (it would be
// delivered twice: by that bundle, and at its release).
func TestHoldWaitsForAnInterruptedPass(t *testing.T) {
	home := t.TempDir()
	msg := msgFile(t, "Subject: x\n\nbody\n")
	Put(home, "k1", "1.1.1.1", msg, "a@b.example", []string{"u@k.example"})
	j := filepath.Join(Path(home, "k1"), ".journal")
	os.WriteFile(j, []byte("pending\n"), 0o640)
	if err := Hold(home, "k1", "1.1.1.1"); err != ErrPassPending {
		t.Fatalf("Hold during a pending pass: %v", err)
	}
	if names, _ := List(home, "k1"); len(names) != 1 {
		t.Errorf("entry moved: %v", names)
	}
	os.Remove(j)
	if err := Hold(home, "k1", "1.1.1.1"); err != nil {
		t.Error(err)
	}
}

// The time an entry spends held is not time waiting: released after
// three days in held/, an entry that had waited two days before has
// waited two days, and outboxlifetime counts from there.
func TestReleaseDoesNotCountHeldTime(t *testing.T) {
	home := t.TempDir()
	msg := msgFile(t, "Subject: x\n\nbody\n")
	Put(home, "k1", "1.1.1.1", msg, "a@b.example", []string{"u@k.example"})
	p := filepath.Join(Path(home, "k1"), "1.1.1.1")
	put := time.Now().Add(-48 * time.Hour)
	if err := os.Chtimes(p, put, put); err != nil {
		t.Fatal(err)
	}
	if err := Hold(home, "k1", "1.1.1.1"); err != nil { // held now (the rename sets the change time)
		t.Fatal(err)
	}
	release := time.Now().Add(72 * time.Hour)
	if err := Release(home, "k1", "1.1.1.1", release); err != nil {
		t.Fatal(err)
	}
	d, err := Waiting(home, "k1", "1.1.1.1", false, release)
	if err != nil || d < 48*time.Hour-time.Minute || d > 48*time.Hour+time.Minute {
		t.Errorf("waiting at the release: %v, %v; want the two days before the hold", d, err)
	}
	if _, err := os.Lstat(sinceFile(home, "k1", "1.1.1.1")); err == nil {
		t.Error("the hold's time is left behind after the release")
	}

	// The time of the hold is its own record, not the file's change
	// time, which a chmod or a copy of the home moves on: held a day
	// before a chmod of today, an entry that had waited a day before
	// its hold has waited a day at its release.
	if err := os.Chtimes(p, put, put); err != nil {
		t.Fatal(err)
	}
	if err := Hold(home, "k1", "1.1.1.1"); err != nil {
		t.Fatal(err)
	}
	heldAt := time.Now().Add(-24 * time.Hour)
	os.WriteFile(sinceFile(home, "k1", "1.1.1.1"), []byte(fmt.Sprintf("%d\n", heldAt.Unix())), 0o640)
	os.Chmod(filepath.Join(Path(home, "k1"), HeldDir, "1.1.1.1"), 0o600) // the change time: now
	if err := Release(home, "k1", "1.1.1.1", release); err != nil {
		t.Fatal(err)
	}
	if d, err := Waiting(home, "k1", "1.1.1.1", false, release); err != nil || d < 24*time.Hour-time.Minute || d > 24*time.Hour+time.Minute {
		t.Errorf("waiting at the second release: %v, %v; want the day before the hold", d, err)
	}
}

// Deleting an entry that an interrupted pass may carry is refused, as a
// hold is: the pass would deliver it all the same. A held entry is in
// no pass, and goes.
func TestDeleteWaitsForAnInterruptedPass(t *testing.T) {
	home := t.TempDir()
	msg := msgFile(t, "Subject: x\n\nbody\n")
	Put(home, "k1", "1.1.1.1", msg, "a@b.example", []string{"u@k.example"})
	Put(home, "k1", "1.1.1.2", msg, "a@b.example", []string{"u@k.example"})
	if err := Hold(home, "k1", "1.1.1.2"); err != nil {
		t.Fatal(err)
	}
	j := filepath.Join(Path(home, "k1"), ".journal")
	os.WriteFile(j, []byte("pending\n"), 0o640)
	if err := Delete(home, "k1", "1.1.1.1", false); err != ErrPassPending {
		t.Fatalf("Delete during a pending pass: %v", err)
	}
	if names, _ := List(home, "k1"); len(names) != 1 {
		t.Errorf("entry removed: %v", names)
	}
	if err := Delete(home, "k1", "1.1.1.2", true); err != nil {
		t.Errorf("a held entry: %v", err)
	}
}

// A hold that fails (the entry packed meanwhile) leaves no record of a
// hold time behind.
func TestHoldMissingEntry(t *testing.T) {
	home := t.TempDir()
	msg := msgFile(t, "Subject: x\n\nbody\n")
	Put(home, "k1", "1.1.1.1", msg, "a@b.example", []string{"u@k.example"})
	if err := Hold(home, "k1", "1.1.1.2"); err == nil {
		t.Fatal("a missing entry was held")
	}
	if _, err := os.Lstat(sinceFile(home, "k1", "1.1.1.2")); err == nil {
		t.Error("a hold time is left for an entry not held")
	}
}

// Settle gives the entries dated after now the time now, and leaves the
// others and the held ones alone.
func TestSettleBringsFutureEntriesToNow(t *testing.T) {
	home := t.TempDir()
	msg := msgFile(t, "Subject: x\n\nbody\n")
	for _, id := range []string{"1.1.1.1", "1.1.1.2", "1.1.1.3"} {
		if err := Put(home, "k1", id, msg, "a@b.example", []string{"u@k.example"}); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Unix(1800000000, 0)
	past, ahead := now.Add(-time.Hour), now.Add(30*24*time.Hour)
	dir := Path(home, "k1")
	os.Chtimes(filepath.Join(dir, "1.1.1.1"), past, past)
	os.Chtimes(filepath.Join(dir, "1.1.1.2"), ahead, ahead)
	os.Chtimes(filepath.Join(dir, "1.1.1.3"), ahead, ahead)
	unlock, err := Lock(home)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if err := Hold(home, "k1", "1.1.1.3"); err != nil {
		t.Fatal(err)
	}
	if n, err := Settle(home, "k1", now); n != 1 || err != nil {
		t.Fatalf("Settle: %d, %v; want 1 changed", n, err)
	}
	for p, want := range map[string]time.Time{"1.1.1.1": past, "1.1.1.2": now, HeldDir + "/1.1.1.3": ahead} {
		fi, err := os.Stat(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		if !fi.ModTime().Equal(want) {
			t.Errorf("%s: time %s, want %s", p, fi.ModTime(), want)
		}
	}
}
