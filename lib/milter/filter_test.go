package milter

import (
	"bytes"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	gomilter "github.com/d--j/go-milter"

	"omail/lib/control"
	"omail/lib/envelope"
	"omail/lib/qexit"
)

// fakeQueue keeps what it is given; code is what Commit answers.
type fakeQueue struct {
	mu      sync.Mutex
	code    int
	openErr error
	msgs    []*fakeSink
}

type fakeSink struct {
	q       *fakeQueue
	buf     bytes.Buffer
	env     *envelope.Envelope
	aborted bool
}

func (q *fakeQueue) open() (Sink, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.openErr != nil {
		return nil, q.openErr
	}
	s := &fakeSink{q: q}
	q.msgs = append(q.msgs, s)
	return s, nil
}

func (s *fakeSink) Write(p []byte) (int, error) { return s.buf.Write(p) }
func (s *fakeSink) Abort()                      { s.aborted = true }
func (s *fakeSink) Commit(e *envelope.Envelope) (int, error) {
	if s.q.code != qexit.OK {
		return s.q.code, errors.New("refused")
	}
	s.env = e
	return qexit.OK, nil
}

// committed are the messages the fake queue holds.
func (q *fakeQueue) committed() []*fakeSink {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []*fakeSink
	for _, s := range q.msgs {
		if s.env != nil {
			out = append(out, s)
		}
	}
	return out
}

// setup runs the milter server on loopback over a control directory
// routing kiosk.example to OCMP, and returns a client for it: an MTA
// that offers no SMFIF_SETSYMLIST and sends its name at connect and the
// queue id at DATA, no other macro.
func setup(t *testing.T, q *fakeQueue) (*gomilter.Client, *bytes.Buffer) {
	return setupMTA(t, q, gomilter.OptRemoveRcpt|gomilter.OptAddHeader)
}

// setupMTA is setup with an MTA that offers actions: with
// gomilter.OptSetMacros it sends the macros the milter asks for.
func setupMTA(t *testing.T, q *fakeQueue, actions gomilter.OptAction) (*gomilter.Client, *bytes.Buffer) {
	t.Helper()
	home := t.TempDir()
	ctl := control.New(home)
	os.MkdirAll(ctl.Path, 0o755)
	os.WriteFile(filepath.Join(ctl.Path, "me"), []byte("omail.example\n"), 0o644)
	os.WriteFile(filepath.Join(ctl.Path, "ocmproutes"), []byte("kiosk.example:kiosk1\n"), 0o644)
	var log bytes.Buffer
	var logMu sync.Mutex
	cfg := &Config{Ctl: ctl, Queue: q.open, Log: lockedWriter{&logMu, &log},
		Now: func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }}
	srv := NewServer(cfg, time.Minute)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return gomilter.NewClient("tcp", l.Addr().String(), gomilter.WithActions(actions), gomilter.WithoutDefaultMacros(),
		gomilter.WithMacroRequest(gomilter.StageConnect, []gomilter.MacroName{gomilter.MacroMTAFQDN}),
		gomilter.WithMacroRequest(gomilter.StageData, []gomilter.MacroName{gomilter.MacroQueueId})), &log
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// send passes one message through a milter session as an MTA would,
// the body in two chunks that split a CRLF, and returns the final
// action and the modifications.
func send(t *testing.T, c *gomilter.Client, rcpts []string) ([]gomilter.ModifyAction, *gomilter.Action) {
	t.Helper()
	return sendAs(t, c, rcpts, nil)
}

// sendAs is send where the MTA holds rcpts[i] as held[rcpts[i]], its
// {rcpt_addr} macro (none for a recipient not in held).
func sendAs(t *testing.T, c *gomilter.Client, rcpts []string, held map[string]string) ([]gomilter.ModifyAction, *gomilter.Action) {
	t.Helper()
	macros := gomilter.NewMacroBag()
	macros.Set(gomilter.MacroMTAFQDN, "mta.example")
	s, err := c.Session(macros)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	step := func(a *gomilter.Action, err error) *gomilter.Action {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	step(s.Conn("client.example", gomilter.FamilyInet, 4321, "192.0.2.7"))
	step(s.Helo("helo.example"))
	step(s.Mail("sender@other.example", ""))
	for _, r := range rcpts {
		if h, ok := held[r]; ok {
			macros.Set(gomilter.MacroRcptAddr, h)
		} else {
			macros.Set(gomilter.MacroRcptAddr, "")
		}
		if a := step(s.Rcpt(r, "")); a.Type != gomilter.ActionContinue {
			t.Fatalf("rcpt %s: %v", r, a.Type)
		}
	}
	macros.Set(gomilter.MacroQueueId, "QID123")
	if a := step(s.DataStart()); a.Type != gomilter.ActionContinue {
		return nil, a
	}
	if a := step(s.HeaderField("Subject", " hello\r\n\tfolded", nil)); a.Type != gomilter.ActionContinue {
		return nil, a
	}
	step(s.HeaderEnd())
	step(s.BodyChunk([]byte("line one\r")))
	step(s.BodyChunk([]byte("\nline\rtwo\r\n")))
	mods, act, err := s.End()
	if err != nil {
		t.Fatal(err)
	}
	return mods, act
}

// Every recipient the milter saw is taken: still DELRCPT and CONTINUE,
// never DISCARD, which would also drop the recipients the MTA adds on
// its own (always_bcc, bcc maps) after the milter saw the RCPTs.
func TestAllTakenAreRemovedNotDiscarded(t *testing.T) {
	q := &fakeQueue{}
	c, log := setup(t, q)
	mods, act := send(t, c, []string{"u@kiosk.example", "V@Kiosk.Example"})
	if act.Type != gomilter.ActionContinue && act.Type != gomilter.ActionAccept {
		t.Fatalf("got %v, want continue", act.Type)
	}
	if len(mods) != 2 || mods[0].Type != gomilter.ActionDelRcpt || mods[0].Rcpt != "<u@kiosk.example>" ||
		mods[1].Type != gomilter.ActionDelRcpt || mods[1].Rcpt != "<V@Kiosk.Example>" {
		t.Fatalf("changes %+v, want DELRCPT <u@kiosk.example> and <V@Kiosk.Example>", mods)
	}
	got := q.committed()
	if len(got) != 1 {
		t.Fatalf("%d messages queued, want 1", len(got))
	}
	m := got[0]
	if m.env.Sender != "sender@other.example" || strings.Join(m.env.Rcpts, ",") != "u@kiosk.example,V@kiosk.example" {
		t.Errorf("envelope %+v", m.env)
	}
	want := "Received: from helo.example (client.example [192.0.2.7])\n" +
		"\tby mta.example (omail-smtpd -milter) with SMTP id QID123;\n" +
		"\tFri, 02 Jan 2026 03:04:05 +0000\n" +
		"Subject: hello\n\tfolded\n\nline one\nline\rtwo\n"
	if m.buf.String() != want {
		t.Errorf("queued\n%q\nwant\n%q", m.buf.String(), want)
	}
	if !strings.Contains(log.String(), "milter 192.0.2.7 mta_id=QID123 from=<sender@other.example> to=<u@kiosk.example,V@kiosk.example> bytes=") ||
		!strings.Contains(log.String(), "queued: delrcpt 2, continue for 0") {
		t.Errorf("log: %s", log.String())
	}
}

func TestSomeTakenAreRemoved(t *testing.T) {
	q := &fakeQueue{}
	c, log := setup(t, q)
	mods, act := send(t, c, []string{"u@kiosk.example", "x@elsewhere.example", "y@omail.example"})
	// CONTINUE at the end of the message is the MTA's accept.
	if act.Type != gomilter.ActionContinue && act.Type != gomilter.ActionAccept {
		t.Fatalf("got %v, want continue", act.Type)
	}
	if len(mods) != 1 || mods[0].Type != gomilter.ActionDelRcpt || mods[0].Rcpt != "<u@kiosk.example>" {
		t.Fatalf("changes %+v, want one DELRCPT <u@kiosk.example>", mods)
	}
	got := q.committed()
	if len(got) != 1 || strings.Join(got[0].env.Rcpts, ",") != "u@kiosk.example" {
		t.Fatalf("queued %+v", got)
	}
	if !strings.Contains(log.String(), "queued: delrcpt 1, continue for 2") {
		t.Errorf("log: %s", log.String())
	}
}

func TestNoneTakenAccepts(t *testing.T) {
	q := &fakeQueue{}
	c, _ := setup(t, q)
	_, act := send(t, c, []string{"x@elsewhere.example"})
	if act.Type != gomilter.ActionAccept {
		t.Fatalf("got %v, want accept (carry on without us)", act.Type)
	}
	if len(q.msgs) != 0 {
		t.Fatal("the queue was opened for a message with no OCMP recipient")
	}
}

func TestQueueFailureIsTempfail(t *testing.T) {
	for _, q := range []*fakeQueue{{code: qexit.WriteError}, {openErr: errors.New("cannot run omail-queue")}} {
		c, log := setup(t, q)
		_, act := send(t, c, []string{"u@kiosk.example", "x@elsewhere.example"})
		if act.Type != gomilter.ActionTempFail {
			t.Fatalf("got %v, want tempfail", act.Type)
		}
		if len(q.committed()) != 0 {
			t.Fatal("something queued")
		}
		if !strings.Contains(log.String(), "tempfail") {
			t.Errorf("log: %s", log.String())
		}
	}
}

func TestQueueRefusalIsReject(t *testing.T) {
	q := &fakeQueue{code: 31} // qmail-queue's "mail server permanently rejected message"
	c, _ := setup(t, q)
	_, act := send(t, c, []string{"u@kiosk.example"})
	if act.Type != gomilter.ActionRejectWithCode || act.SMTPCode != 554 {
		t.Fatalf("got %+v, want a 554 rejection", act)
	}
}

func TestBadRoutingFileIsTempfail(t *testing.T) {
	q := &fakeQueue{}
	home := t.TempDir()
	ctl := control.New(home)
	os.MkdirAll(ctl.Path, 0o755)
	os.WriteFile(filepath.Join(ctl.Path, "me"), []byte("omail.example\n"), 0o644)
	// An endpoint that is not a safe name: routing says so, for now.
	os.WriteFile(filepath.Join(ctl.Path, "ocmproutes"), []byte("kiosk.example:../x\n"), 0o644)
	f := &filter{cfg: &Config{Ctl: ctl, Queue: q.open}}
	if r, _ := f.MailFrom("a@b.example", "", nil); r != gomilter.RespContinue {
		t.Fatalf("MailFrom: %v", r)
	}
	if r, _ := f.RcptTo("u@kiosk.example", "", nil); r != gomilter.RespTempFail {
		t.Fatalf("RcptTo with a bad route: %v, want tempfail", r)
	}
}

// A recipient is routed as the MTA holds it ({rcpt_addr}, or the RCPT
// argument with its route, brackets and spaces gone when the MTA sends
// no macro), and DELRCPT names it as the MTA matches it: the argument
// without its source route. Postfix keeps <@x.example:u@kiosk.example>
// as u@kiosk.example and < u@kiosk.example> as u@kiosk.example.
func TestRecipientAsTheMTAHoldsIt(t *testing.T) {
	for _, c := range []struct {
		arg, held string // held "": an MTA that sends no {rcpt_addr}
		del       string
	}{
		{"@x.example:u@kiosk.example", "u@kiosk.example", "<u@kiosk.example>"},
		{"@x.example:u@kiosk.example", "", "<u@kiosk.example>"},
		{"@[192.0.2.1],@y.example:u@kiosk.example", "", "<u@kiosk.example>"},
		{" u@kiosk.example", "u@kiosk.example", "<u@kiosk.example>"},
		{" u@kiosk.example ", "", "<u@kiosk.example>"},
		{"u(c)@kiosk.example", "u@kiosk.example", "<u(c)@kiosk.example>"},
		{"u@kiosk.example.", "u@kiosk.example", "<u@kiosk.example.>"},
		{`"u"@kiosk.example`, "u@kiosk.example", `<"u"@kiosk.example>`},
		// sendmail's {rcpt_addr} for a local mailer is the user alone:
		// the argument is routed then.
		{"u@kiosk.example", "u", "<u@kiosk.example>"},
	} {
		q := &fakeQueue{}
		actions := gomilter.OptRemoveRcpt
		held := map[string]string{}
		if c.held != "" {
			actions |= gomilter.OptSetMacros
			held[c.arg] = c.held
		}
		cl, lg := setupMTA(t, q, actions)
		mods, act := sendAs(t, cl, []string{c.arg, "x@elsewhere.example"}, held)
		if act.Type != gomilter.ActionContinue && act.Type != gomilter.ActionAccept {
			t.Fatalf("<%s> held as %q: got %v, want continue\n%s", c.arg, c.held, act.Type, lg)
		}
		got := q.committed()
		if len(got) != 1 || strings.Join(got[0].env.Rcpts, ",") != "u@kiosk.example" {
			t.Errorf("<%s> held as %q: queued %d messages, want one for u@kiosk.example\n%s", c.arg, c.held, len(got), lg)
			continue
		}
		if len(mods) != 1 || mods[0].Type != gomilter.ActionDelRcpt || mods[0].Rcpt != c.del {
			t.Errorf("<%s> held as %q: changes %+v, want DELRCPT %s", c.arg, c.held, mods, c.del)
		}
	}
}

// The milter asks for {rcpt_addr} when the MTA lets it choose its
// macros (SMFIF_SETSYMLIST), so it reaches the milter even when the
// MTA's own list for RCPT leaves it out. Without it, an argument that
// does not parse (here a comment) is left to the MTA.
func TestAsksForRcptAddr(t *testing.T) {
	for _, symlist := range []bool{true, false} {
		q := &fakeQueue{}
		actions := gomilter.OptRemoveRcpt
		if symlist {
			actions |= gomilter.OptSetMacros
		}
		c, lg := setupMTA(t, q, actions)
		arg := "u(c)@kiosk.example"
		mods, _ := sendAs(t, c, []string{arg, "x@elsewhere.example"}, map[string]string{arg: "u@kiosk.example"})
		if want := map[bool]int{true: 1, false: 0}[symlist]; len(q.committed()) != want || len(mods) != want {
			t.Fatalf("symlist %v: queued %d, changes %+v, want %d of each\n%s", symlist, len(q.committed()), mods, want, lg)
		}
	}
}

// heldOnce is an MTA's macros where {rcpt_addr} comes with the first
// RCPT only.
type heldOnce struct {
	*gomilter.MacroBag
	sent bool
}

func (h *heldOnce) GetEx(name gomilter.MacroName) (string, bool) {
	if name == gomilter.MacroRcptAddr {
		if h.sent {
			return "", false
		}
		h.sent = true
		return "u@kiosk.example", true
	}
	return h.MacroBag.GetEx(name)
}

func (h *heldOnce) Get(name gomilter.MacroName) string { v, _ := h.GetEx(name); return v }

// An MTA that sends {rcpt_addr} with one RCPT and none with the next
// leaves the first value in place: the second recipient is routed by its
// own argument, not as the first one.
func TestStaleRcptAddrIsNotUsed(t *testing.T) {
	q := &fakeQueue{}
	c, lg := setupMTA(t, q, gomilter.OptRemoveRcpt|gomilter.OptSetMacros)
	s, err := c.Session(&heldOnce{MacroBag: gomilter.NewMacroBag()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	must := func(_ *gomilter.Action, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.Conn("client.example", gomilter.FamilyInet, 4321, "192.0.2.7"))
	must(s.Helo("helo.example"))
	must(s.Mail("sender@other.example", ""))
	must(s.Rcpt("u@kiosk.example", ""))
	must(s.Rcpt("x@elsewhere.example", ""))
	must(s.DataStart())
	must(s.HeaderField("Subject", " stale", nil))
	must(s.HeaderEnd())
	must(s.BodyChunk([]byte("body\r\n")))
	mods, _, err := s.End()
	if err != nil {
		t.Fatal(err)
	}
	got := q.committed()
	if len(got) != 1 || strings.Join(got[0].env.Rcpts, ",") != "u@kiosk.example" || len(mods) != 1 || mods[0].Rcpt != "<u@kiosk.example>" {
		t.Fatalf("queued %d, changes %+v: want u@kiosk.example alone taken and removed\n%s", len(got), mods, lg)
	}
}
