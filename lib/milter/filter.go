// Package milter is omail-smtpd -milter: a milter (the sendmail/Postfix
// mail filter protocol, version 6, spoken by github.com/d--j/go-milter)
// that takes from another MTA the recipients omail routes to OCMP.
//
// For each message the MTA passes through, every recipient is routed
// as omail-deliver would route it (lib/qmanager's Router: locals and
// virtualdomains first, then ocmproutes). If none goes to OCMP the MTA
// is told to carry on. Otherwise the message is streamed into omail's
// queue for those recipients (qqclient, the usual queue path, with a
// Received: line naming the MTA's queue id and the client), and only
// once the queue has said it holds the message durably does the milter
// answer: DELRCPT for each recipient it took, and CONTINUE. Never
// DISCARD: the MTA may have recipients of its own that the milter never
// saw (always_bcc, bcc maps), which DISCARD would drop; when no
// recipient is left the MTA keeps nothing. Any failure of omail's queue
// is TEMPFAIL: the client keeps the message and retries.
//
// A recipient is routed as the MTA holds it: the {rcpt_addr} macro
// (the address the MTA resolved, source route, comments and spaces
// gone), or, when the MTA sends none, the RCPT argument with its
// brackets, spaces and source route removed. DELRCPT names it by the
// RCPT argument without its source route: the form the MTA compares
// with what it keeps (Postfix matches the recipient as the client gave
// it, after its own parsing, which drops the route).
package milter

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	gomilter "github.com/d--j/go-milter"

	"omail/lib/clock"
	"omail/lib/control"
	"omail/lib/envelope"
	"omail/lib/eventlog"
	"omail/lib/qexit"
	"omail/lib/qmanager"
	"omail/lib/relay"
)

// Sink takes one message into omail's queue (a qqclient.Client).
type Sink interface {
	io.Writer
	// Commit ends the message; code 0 only when it is durably queued.
	Commit(*envelope.Envelope) (int, error)
	// Abort ends the message so that nothing is queued.
	Abort()
}

// Config is what every MTA connection shares.
type Config struct {
	Ctl   *control.Dir         // routing files, control/me, read per message
	Queue func() (Sink, error) // starts a message into the queue
	Log   io.Writer            // one line per event
	Now   func() time.Time     // the Received: line's date; nil: real time
}

// NewServer returns the milter server: DELRCPT is the only change it
// asks to make; it asks for header values as they are (leading space
// kept). It asks for the macros it uses (when the MTA offers
// SMFIF_SETSYMLIST; one that does not still sends its defaults, which
// in Postfix and sendmail hold them all): the MTA's name "j" at
// connect, the sender and each recipient as the MTA holds them
// ({mail_addr}, {rcpt_addr}), the queue id "i" at DATA and end of
// message. Without {rcpt_addr} the RCPT argument is used; a missing "j"
// or "i" only makes the Received: line say less.
func NewServer(cfg *Config, readTimeout time.Duration) *gomilter.Server {
	return gomilter.NewServer(
		gomilter.WithMilter(func() gomilter.Milter { return &filter{cfg: cfg} }),
		gomilter.WithActions(gomilter.OptRemoveRcpt),
		gomilter.WithProtocol(gomilter.OptHeaderLeadingSpace),
		gomilter.WithMacroRequest(gomilter.StageConnect, []gomilter.MacroName{gomilter.MacroMTAFQDN}),
		gomilter.WithMacroRequest(gomilter.StageMail, []gomilter.MacroName{gomilter.MacroMailAddr}),
		gomilter.WithMacroRequest(gomilter.StageRcpt, []gomilter.MacroName{gomilter.MacroRcptAddr}),
		gomilter.WithMacroRequest(gomilter.StageData, []gomilter.MacroName{gomilter.MacroQueueId}),
		gomilter.WithMacroRequest(gomilter.StageEOM, []gomilter.MacroName{gomilter.MacroQueueId}),
		gomilter.WithNegotiationCallback(negotiate),
		gomilter.WithReadTimeout(readTimeout),
	)
}

// negotiate is go-milter's negotiation with one change: asking for
// macros (SMFIF_SETSYMLIST) is optional, so that an MTA that does not
// offer it is still served, with its default macros. What omail needs
// (DELRCPT, header values with their leading space) it must offer.
func negotiate(mtaVersion, milterVersion uint32, mtaActions, milterActions gomilter.OptAction, mtaProtocol, milterProtocol gomilter.OptProtocol, offered gomilter.DataSize) (uint32, gomilter.OptAction, gomilter.OptProtocol, gomilter.DataSize, error) {
	if mtaVersion < 2 || mtaVersion > gomilter.MaxServerProtocolVersion {
		return 0, 0, 0, 0, fmt.Errorf("milter: negotiate: unsupported protocol version %d", mtaVersion)
	}
	need := milterActions &^ gomilter.OptSetMacros
	if mtaActions&need != need {
		return 0, 0, 0, 0, fmt.Errorf("milter: negotiate: the MTA does not offer the actions omail needs: offered %q, needed %q", mtaActions, need)
	}
	if mtaProtocol&milterProtocol != milterProtocol {
		return 0, 0, 0, 0, fmt.Errorf("milter: negotiate: the MTA does not offer the protocol options omail needs: offered %q, needed %q", mtaProtocol, milterProtocol)
	}
	return mtaVersion, milterActions & mtaActions, milterProtocol, offered, nil
}

// mtaAddress is an address as the MTA holds it: macro (its {mail_addr}
// or {rcpt_addr}) when the MTA sent one that parses with a domain (a
// sendmail local mailer's is the user alone), else arg, the MAIL or
// RCPT argument, without its brackets and the spaces around it.
func mtaAddress(macro, arg string) (relay.Addr, error) {
	if macro != "" {
		if a, err := relay.Parse(macro); err == nil && a.Domain != "" {
			return a, nil
		}
	}
	return relay.Parse(bare(arg))
}

// bare is a MAIL or RCPT argument without the spaces around it and its
// angle brackets (go-milter removes them only when nothing is around).
func bare(arg string) string {
	arg = strings.TrimSpace(arg)
	if len(arg) >= 2 && arg[0] == '<' && arg[len(arg)-1] == '>' {
		arg = strings.TrimSpace(arg[1 : len(arg)-1])
	}
	return arg
}

// macro is m's value of name; m is nil in tests that call the filter
// directly.
func macro(m gomilter.Modifier, name gomilter.MacroName) string {
	if m == nil {
		return ""
	}
	return m.Get(name)
}

// rcpt is one recipient as the MTA named it and as omail routes it.
type rcpt struct {
	arg   string // the RCPT argument
	held  string // the MTA's {rcpt_addr} with it, "" if none
	del   string // for DELRCPT: the RCPT argument, bare, source route dropped
	addr  string // omail's normal form
	taken bool   // routed to OCMP: omail delivers it
}

// filter is one MTA connection (normally one SMTP session).
type filter struct {
	gomilter.NoOpMilter
	cfg *Config

	// the connection
	client string // the client's address, for log lines
	ip     string // the client's address as the MTA gave it, "" if none
	host   string // the client's host name as the MTA has it
	helo   string

	// the message
	sender   string
	senderOK bool // the sender parsed: omail can queue for it
	router   *qmanager.Router
	rcpts    []rcpt
	sink     Sink
	w        *bufio.Writer // onto crlfToLF onto sink
	lf       *crlfToLF
	opened   bool // the decision to queue or not is made
	mtaID    string
	leadSP   bool // header values come with their leading space
}

// sessions numbers the connections for log lines without a client.
var sessions atomic.Uint64

func (f *filter) log(format string, a ...any) {
	if f.cfg.Log == nil {
		return
	}
	c := f.client
	if c == "" {
		c = "unknown"
	}
	fmt.Fprintf(f.cfg.Log, "omail-smtpd: milter %s %s\n", clean(c), fmt.Sprintf(format, a...))
}

func (f *filter) NewConnection(m gomilter.Modifier) error {
	f.leadSP = m.Protocol()&gomilter.OptHeaderLeadingSpace != 0
	return nil
}

func (f *filter) Connect(host, family string, port uint16, addr string, m gomilter.Modifier) (*gomilter.Response, error) {
	f.host, f.ip, f.client, f.helo = host, addr, addr, ""
	if f.client == "" {
		f.client = fmt.Sprintf("%s-%d", family, sessions.Add(1))
	}
	return gomilter.RespContinue, nil
}

func (f *filter) Helo(name string, m gomilter.Modifier) (*gomilter.Response, error) {
	f.helo = name
	return gomilter.RespContinue, nil
}

// MailFrom starts a message: the routing files are read now, so that an
// edit counts from the next message on.
func (f *filter) MailFrom(from, esmtpArgs string, m gomilter.Modifier) (*gomilter.Response, error) {
	f.reset()
	r, err := qmanager.NewRouter(f.cfg.Ctl)
	if err != nil {
		f.log("cannot read the routing control files: %v: tempfail", err)
		return gomilter.RespTempFail, nil
	}
	f.router = r
	a, err := mtaAddress(macro(m, gomilter.MacroMailAddr), from)
	f.sender, f.senderOK = a.String(), err == nil
	return gomilter.RespContinue, nil
}

// RcptTo routes one recipient. One that cannot be routed now (a control
// file unreadable) is refused for now, 4xx: the client retries it.
func (f *filter) RcptTo(to, esmtpArgs string, m gomilter.Modifier) (*gomilter.Response, error) {
	r := rcpt{arg: to, held: macro(m, gomilter.MacroRcptAddr), del: relay.DropRoute(bare(to))}
	// An MTA that sends no macros with this RCPT leaves the last RCPT's
	// in place (go-milter keeps them until the next MAIL): the same
	// {rcpt_addr} with a different argument is not trusted, and the
	// argument decides.
	held := r.held
	if n := len(f.rcpts); n > 0 && held == f.rcpts[n-1].held && to != f.rcpts[n-1].arg {
		held = ""
	}
	if a, err := mtaAddress(held, to); err == nil && f.senderOK && f.router != nil && a.Domain != "" {
		r.addr = a.String()
		rt, err := f.router.Route(r.addr)
		if err != nil {
			f.log("cannot route <%s>: %v: tempfail", clean(to), err)
			return gomilter.RespTempFail, nil
		}
		r.taken = rt.Kind == qmanager.RouteOCMP
	}
	f.rcpts = append(f.rcpts, r)
	return gomilter.RespContinue, nil
}

// taken are the recipients omail delivers.
func (f *filter) taken() []string {
	var out []string
	for _, r := range f.rcpts {
		if r.taken {
			out = append(out, r.addr)
		}
	}
	return out
}

// Data opens the queue when omail has recipients here: what follows is
// written to it as it arrives. With none, the MTA need not send us the
// message at all: ACCEPT lets it carry on without this filter.
func (f *filter) Data(m gomilter.Modifier) (*gomilter.Response, error) {
	return f.open(m), nil
}

// open is Data's work, done at the first of the message's events that
// comes (an MTA may have been told not to send DATA).
func (f *filter) open(m gomilter.Modifier) *gomilter.Response {
	if f.opened {
		return gomilter.RespContinue
	}
	f.opened = true
	f.mtaID = m.Get(gomilter.MacroQueueId)
	if len(f.taken()) == 0 {
		f.log("mta_id=%s to=%d: none for omail, continue", clean(f.mtaID), len(f.rcpts))
		return gomilter.RespAccept
	}
	sink, err := f.cfg.Queue()
	if err != nil {
		f.log("mta_id=%s cannot start the queue: %v: tempfail", clean(f.mtaID), err)
		return gomilter.RespTempFail
	}
	f.sink = sink
	f.lf = &crlfToLF{w: sink}
	f.w = bufio.NewWriterSize(f.lf, 64*1024)
	by := m.Get(gomilter.MacroMTAFQDN)
	if by == "" {
		by, _ = f.cfg.Ctl.Me()
	}
	f.w.WriteString(f.received(by))
	return gomilter.RespContinue
}

// received is the Received: line for omail's copy: the client as the
// MTA saw it, the MTA and its queue id.
func (f *filter) received(by string) string {
	from := clean(f.helo)
	if from == "" {
		from = "unknown"
	}
	if ip := clean(f.ip); ip != "" {
		if strings.Contains(ip, ":") {
			ip = "IPv6:" + ip
		}
		info := "[" + ip + "]"
		if h := clean(f.host); h != "" && h != "["+f.ip+"]" {
			info = h + " " + info
		}
		from += " (" + info + ")"
	}
	id := clean(f.mtaID)
	if id == "" {
		id = "unknown"
	}
	return fmt.Sprintf("Received: from %s\n\tby %s (omail-smtpd -milter) with SMTP id %s;\n\t%s\n",
		from, clean(by), id, clock.Now(f.cfg.Now).Format("Mon, 02 Jan 2006 15:04:05 -0700"))
}

func (f *filter) Header(name, value string, m gomilter.Modifier) (*gomilter.Response, error) {
	if r := f.open(m); r != gomilter.RespContinue {
		return r, nil
	}
	if f.w != nil {
		f.w.WriteString(name)
		f.w.WriteByte(':')
		if !f.leadSP {
			f.w.WriteByte(' ')
		}
		f.w.WriteString(value)
		f.w.WriteString("\r\n")
	}
	return gomilter.RespContinue, nil
}

func (f *filter) Headers(m gomilter.Modifier) (*gomilter.Response, error) {
	if r := f.open(m); r != gomilter.RespContinue {
		return r, nil
	}
	if f.w != nil {
		f.w.WriteString("\r\n")
	}
	return gomilter.RespContinue, nil
}

func (f *filter) BodyChunk(chunk []byte, m gomilter.Modifier) (*gomilter.Response, error) {
	if r := f.open(m); r != gomilter.RespContinue {
		return r, nil
	}
	if f.w != nil {
		f.w.Write(chunk)
	}
	return gomilter.RespContinue, nil
}

// EndOfMessage commits omail's copy and only then answers.
func (f *filter) EndOfMessage(m gomilter.Modifier) (*gomilter.Response, error) {
	if id := m.Get(gomilter.MacroQueueId); id != "" {
		f.mtaID = id
	}
	defer f.reset()
	if r := f.open(m); r != gomilter.RespContinue {
		return r, nil
	}
	taken := f.taken()
	if f.sink == nil || len(taken) == 0 {
		return gomilter.RespContinue, nil
	}
	err := f.w.Flush()
	if err == nil {
		err = f.lf.Close()
	}
	if err != nil {
		f.sink.Abort()
		f.sink = nil
		f.log("mta_id=%s writing to the queue: %v: tempfail", clean(f.mtaID), err)
		return gomilter.RespTempFail, nil
	}
	// Committing may take a while (fsync): keep the MTA's timer off.
	m.Progress()
	e := &envelope.Envelope{Sender: f.sender, Rcpts: taken}
	code, err := f.sink.Commit(e)
	f.sink = nil
	to := clean(strings.Join(taken, ","))
	switch {
	case code == qexit.OK:
	case qexit.Permanent(code):
		f.log("mta_id=%s from=<%s> to=<%s> queue refused: %v: reject", clean(f.mtaID), clean(f.sender), to, err)
		return gomilter.RejectWithCodeAndReason(554, "5.3.0 omail's queue refused the message: "+qexit.Describe(code))
	default:
		f.log("mta_id=%s from=<%s> to=<%s> queue failed: %v: tempfail", clean(f.mtaID), clean(f.sender), to, err)
		return gomilter.RespTempFail, nil
	}
	// DELRCPT and CONTINUE even when every recipient the milter saw
	// is taken: DISCARD would also drop those the MTA added itself.
	for _, r := range f.rcpts {
		if r.taken {
			if err := m.DeleteRecipient(r.del); err != nil {
				// The MTA is gone or broke the protocol: it keeps the
				// whole message (milter_default_action), omail has a
				// copy for these: a duplicate at worst, never a loss.
				f.log("mta_id=%s delrcpt <%s>: %v", clean(f.mtaID), clean(r.del), err)
				return nil, err
			}
		}
	}
	f.log("mta_id=%s from=<%s> to=<%s> bytes=%d queued: delrcpt %d, continue for %d", clean(f.mtaID), clean(f.sender), to, f.lf.n, len(taken), len(f.rcpts)-len(taken))
	return gomilter.RespContinue, nil
}

// Abort ends the message without queueing anything.
func (f *filter) Abort(m gomilter.Modifier) error {
	f.reset()
	return nil
}

func (f *filter) Cleanup(m gomilter.Modifier) { f.reset() }

// reset forgets the message; a queue still open gets nothing.
func (f *filter) reset() {
	if f.sink != nil {
		f.sink.Abort()
	}
	f.sink, f.w, f.lf = nil, nil, nil
	f.sender, f.senderOK, f.router, f.rcpts, f.mtaID, f.opened = "", false, nil, nil, "", false
}

// clean is eventlog.Clean: peer-supplied text made safe for a log line
// or a header.
func clean(s string) string { return eventlog.Clean(s) }
