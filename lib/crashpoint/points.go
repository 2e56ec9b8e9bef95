package crashpoint

// Kind says what a point is and what the tests do there.
type Kind int

const (
	// Step is a crash point between two steps (Hook.At): tests kill
	// the program there.
	Step Kind = iota
	// FileOp is a file operation on a commit path (Hook.Op): tests kill
	// the program before it (the name) and after it (name+Done), and
	// inject ENOSPC and EIO into it, after which the state must be as
	// before the whole operation and a retry must succeed.
	FileOp
	// Resume is a file operation after the record that lets a later
	// run finish the work (an intent, a journal, progress written
	// down): an error injected there fails the run, and the next run
	// finishes from the record. Tests check the end state (delivered,
	// once where exactly-once is promised), not that nothing changed.
	Resume
	// Write is the writes of a message or bundle file (Hook.Writer):
	// tests inject ENOSPC and EIO in the middle of the stream.
	Write
	// Undo is a file operation that undoes, repairs or tidies up
	// (cutting an mbox back, removing a tmp/ name after the commit;
	// Hook.Op): tests kill the program before and after it. An error
	// there is a second failure, or one the code tolerates (a tmp/ file
	// left for the cleanup), so it is not expected to leave the state
	// as before.
	Undo
)

// Kinds in the order of the constants, for test/crash-every-point.
var kindNames = [...]string{"step", "fileop", "resume", "write", "undo"}

func (k Kind) String() string { return kindNames[k] }

// Point is a named point of a commit path.
type Point struct {
	Name string
	Kind Kind
	Path string // the programs and the commit path it is on
}

// Points lists every point the programs call. TestPointsListed fails
// when the code calls one that is not here, or one here is called
// nowhere; test/crash-every-point iterates over this list.
var Points = []Point{
	// Accept: omail-queue, and omail-smtpd/omail-inject queueing in
	// process (lib/qqclient), through queue.Submit.
	{"queue-write", Write, "accept: the message file in tmp/"},
	{"queue-commit-fsync", FileOp, "accept: fsync of tmp/ID.mess"},
	{"queue-commit-synced", Step, "accept: synced and closed, not linked"},
	{"queue-commit-link", FileOp, "accept: link tmp/ID.mess to todo/ID"},
	{"queue-commit-linked", Step, "accept: linked, todo/ not fsynced"},
	{"queue-commit-dirsync", FileOp, "accept: fsync of todo/: the commit point"},
	{"queue-commit-unlink-tmp", Undo, "accept: removing the tmp/ name after the commit"},

	// omail-deliver taking a message apart (lib/queue todofile.go).
	{"queue-message-link", Resume, "deliver: link todo/ID to mess/ID, the mark that an attempt has begun"},
	{"queue-message-dirsync", Resume, "deliver: fsync of mess/ after the link"},
	{"queue-message-linked", Step, "deliver: mess/ID linked"},
	{"queue-trim", Step, "deliver: before the todo file is cut back"},
	{"queue-finish", Step, "deliver: every recipient done, before todo/ (or info/) and mess/ are removed"},
	{"queue-info-write", Resume, "deliver: the state written to info/ (a deferral, a bounce, a second recipient, or taken apart)"},
	{"queue-todo-unlink", Resume, "deliver: todo/ID removed once info/ holds the state"},
	{"queue-trim-truncate", Resume, "deliver: the file cut back to the message"},
	{"queue-finish-unlink-state", Resume, "deliver: the finished message's state (todo/ or info/) removed"},
	{"queue-finish-unlink-mess", Undo, "deliver: the finished message's mess/ID removed (a failure leaves an orphan, removed once old)"},

	// omail-deliver -hold (lib/qmanager/admin.go).
	{"admin-hold-noted", Step, "hold: the hold note written durably, the attempt in progress not yet waited for"},

	// Forwards and bounces: derived messages (lib/queue derived.go,
	// lib/qmanager).
	{"derived-fsync", FileOp, "forward/bounce: fsync of the derived message"},
	{"derived-written", Step, "forward/bounce: written and synced"},
	{"derived-rename", FileOp, "forward/bounce: rename to the intent tmp/ID.ready"},
	{"derived-intent", Step, "forward/bounce: intent durable"},
	{"derived-link", Resume, "forward/bounce: link of the intent into todo/"},
	{"derived-dirsync", Resume, "forward/bounce: fsync of todo/"},
	{"derived-linked", Step, "forward/bounce: queued"},
	{"derived-resume-link", Resume, "forward/bounce: a repeat finishing the link"},
	{"derived-resume-dirsync", Resume, "forward/bounce: a repeat's fsync of todo/"},
	{"forward-recorded", Step, "forward: the original's state records it"},
	{"bounce-recorded", Step, "bounce: the original's state records it"},
	{"bounce-failed-saved", Step, "bounce: a failed bounce written down"},

	// Local delivery: mbox (lib/mbox, lib/local).
	{"dotlock-link", FileOp, "mbox: the dotlock, written unnamed, linked to MBOX.lock"},
	{"dotlock-takeover-truncate", Undo, "mbox: cutting back what a writer that died holding the lock appended"},
	{"dotlock-takeover-fsync", Undo, "mbox: fsync after that"},
	{"dotlock-takeover-remove", Undo, "mbox: the dead writer's dotlock removed"},
	{"dotlock-record", Resume, "mbox: the dotlock's length rewritten after Recover cut the file"},
	{"dotlock-remove", Resume, "mbox: our dotlock removed (Commit, Abort): after it, the copy is no longer cut by a takeover"},
	{"mbox-locked", Step, "mbox: locked, nothing written"},
	{"mbox-write", Write, "mbox: the appended copy"},
	{"mbox-torn", Step, "mbox: From_ line and prefix written, body not"},
	{"mbox-written", Step, "mbox: all written, not fsynced"},
	{"mbox-fsync", FileOp, "mbox: fsync of the mailbox"},
	{"mbox-synced", Step, "mbox: fsynced, locks held"},
	{"mbox-done", Step, "mbox: delivered, not recorded in the queue"},
	{"mbox-abort-truncate", Undo, "mbox: cutting a failed copy off"},
	{"mbox-abort-fsync", Undo, "mbox: fsync after cutting back"},
	{"mbox-recover-truncate", Undo, "mbox: cutting off a crashed attempt's torn copy"},
	{"mbox-recover-fsync", Undo, "mbox: fsync after that"},

	// Local delivery: Maildir (lib/maildir, lib/local).
	{"maildir-created", Step, "maildir: tmp/ file created"},
	{"maildir-write", Write, "maildir: the message file"},
	{"maildir-torn", Step, "maildir: prefix written, body not"},
	{"maildir-written", Step, "maildir: written, not fsynced"},
	{"maildir-fsync", FileOp, "maildir: fsync of tmp/NAME"},
	{"maildir-synced", Step, "maildir: fsynced and closed"},
	{"maildir-link", FileOp, "maildir: link tmp/NAME to new/NAME"},
	{"maildir-linked", Step, "maildir: linked, new/ not fsynced"},
	{"maildir-dirsync", FileOp, "maildir: fsync of new/"},
	{"maildir-dirsynced", Step, "maildir: delivered"},
	{"maildir-unlink-tmp", Undo, "maildir: removing the tmp/ name"},
	{"maildir-done", Step, "maildir: delivered, not recorded in the queue"},
	{"local-done", Step, "local: every recipient's delivery made, not reported"},

	// omail-pack (lib/packer).
	{"pack-bundle-write", Write, "pack: the bundle file in tmp/"},
	{"pack-bundle-fsync", FileOp, "pack: fsync of the bundle"},
	{"pack-bundle-dirsync", FileOp, "pack: fsync of tmp/"},
	{"pack-journal-write", FileOp, "pack: the outbox journal (safefile: write, fsync, rename, fsync dir)"},
	{"pack-publish-rename", Resume, "pack: bundle renamed into upload/"},
	{"pack-publish-dirsync", Resume, "pack: fsync of upload/"},
	{"pack-outbox-remove", Resume, "pack: unlink of the packed outbox entries, fsync"},
	{"pack-journal-remove", Resume, "pack: unlink of the journal, fsync"},
	{"pack-mbox-journal-write", FileOp, "pack: the spool mbox journal"},
	{"pack-mbox-truncate", Resume, "pack: spool mbox cut back"},
	{"pack-mbox-fsync", Resume, "pack: fsync of the spool mbox"},
	{"pack-mbox-journal-remove", Resume, "pack: unlink of the spool journal"},
	{"pack-written", Step, "pack: bundle written in tmp/"},
	{"pack-journal", Step, "pack: journal written"},
	{"pack-published", Step, "pack: bundle in upload/"},
	{"pack-removed", Step, "pack: outbox entries removed"},
	{"pack-mbox-measured", Step, "pack: spool mbox measured"},
	{"pack-mbox-journal", Step, "pack: spool journal written"},
	{"pack-mbox-published", Step, "pack: spool bundle in upload/"},
	{"pack-mbox-cut", Step, "pack: spool mbox cut back"},

	// omail-unpack (lib/unpacker): proxy and client.
	{"unpack-queued", Step, "unpack proxy: a message queued"},
	{"unpack-progress", Step, "unpack proxy: progress recorded"},
	{"unpack-appended", Step, "unpack client: messages appended"},
	{"unpack-committed", Step, "unpack client: mailbox committed"},
	{"unpack-marked", Step, "unpack: bundle recorded as seen"},
	{"seen-progress", Resume, "unpack: progress written (client: before appending; proxy: after each message)"},
	{"seen-record", Resume, "unpack: the bundle id recorded as unpacked"},
	{"seen-progress-clear", Resume, "unpack: progress removed"},
	{"unpack-bundle-remove", Resume, "unpack: the bundle file removed"},
	{"unpack-recover-truncate", Undo, "unpack client: cutting off a crashed run's copies"},
	{"unpack-recover-fsync", Undo, "unpack client: fsync after that"},
	{"quarantine-rename", FileOp, "pack, unpack: a damaged file moved aside"},
	{"quarantine-copy", FileOp, "pack, unpack: copied aside across file systems"},
	{"quarantine-unlink", Resume, "pack, unpack: the original removed after the copy"},

	// The OCMP outbox transport (lib/outbox, omail-deliver).
	{"outbox-write", Write, "outbox: the entry's temporary file"},
	{"outbox-commit", FileOp, "outbox: fsync, rename into place, fsync of the directory"},

	// Remote SMTP (lib/remote, omail-deliver -remote).
	{"remote-accepted", Step, "remote: the peer said 250 after the data, the result not yet recorded (at-least-once window)"},
}
