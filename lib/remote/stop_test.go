package remote

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"omail/lib/internal/testfake"
	"omail/lib/route"
)

// The first stop signal (WithStop) lets the session in progress run to
// its end, and opens no connection after it: the next MX host is not
// tried, the recipients are deferred.
func TestStopFinishesSessionOpensNoOther(t *testing.T) {
	ts := startServer(t, func(*smtp.Server) {})
	busy := greeter421(t)
	where := map[string]string{"192.0.2.2:25": busy, "192.0.2.3:25": ts.addr}
	stop, stopNow := context.WithCancel(context.Background())
	var dialed []string
	c := &Client{
		Resolver: testfake.DNS{
			MX: map[string][]*net.MX{
				"live.test": {{Host: "live.test.", Pref: 10}},
				"busy.test": {{Host: "busy.test.", Pref: 10}, {Host: "live.test.", Pref: 20}},
			},
			Hosts: map[string][]string{"busy.test": {"192.0.2.2"}, "live.test": {"192.0.2.3"}},
		},
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dialed = append(dialed, addr)
			stopNow() // the signal comes while this session opens
			var d net.Dialer
			return d.DialContext(ctx, network, where[addr])
		},
		Backoff: &Backoff{},
	}
	msg := writeMsg(t, "x\n")
	ctx := WithStop(context.Background(), stop)
	checkStatuses(t, c.Deliver(ctx, route.Dest{Domain: "live.test", Port: 25}, msg, "s@x", []string{"a@live.test"}), "a@live.test=ok")
	if len(ts.got()) != 1 {
		t.Fatalf("the session in progress at the stop did not deliver: %+v", ts.got())
	}

	// Stopped during the busy host's session: live.test is not tried.
	stop, stopNow = context.WithCancel(context.Background())
	defer stopNow()
	dialed = nil
	res := c.Deliver(WithStop(context.Background(), stop), route.Dest{Domain: "busy.test", Port: 25}, msg, "s@x", []string{"b@busy.test"})
	checkStatuses(t, res, "b@busy.test=temp")
	if strings.Join(dialed, " ") != "192.0.2.2:25" || !strings.Contains(res[0].Text, "interrupted") {
		t.Errorf("dialed %v after the stop; result %q", dialed, res[0].Text)
	}
	if len(ts.got()) != 1 {
		t.Errorf("a connection was opened after the stop: %+v", ts.got())
	}
}

// A wait for a connection slot ends at the stop.
func TestStopEndsSlotWait(t *testing.T) {
	l := &Limiter{PerHost: 1, Total: 1}
	release, err := l.Acquire(context.Background(), "h:25")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	stop, stopNow := context.WithCancel(context.Background())
	stopNow()
	wait, done := UntilStop(WithStop(context.Background(), stop))
	defer done()
	if _, err := l.Acquire(wait, "h:25"); err == nil {
		t.Fatal("a slot wait went on after the stop")
	}
	if !Stopping(WithStop(context.Background(), stop)) || Stopping(context.Background()) {
		t.Error("stopping")
	}
}

// A STARTTLS that fails is retried in plain text on a new connection:
// not after the stop. Nothing was sent, the recipient is deferred.
func TestStopNoPlainRetry(t *testing.T) {
	ts := startServer(t, func(s *smtp.Server) { s.TLSConfig = &tls.Config{} }) // offered, cannot work
	stop, stopNow := context.WithCancel(context.Background())
	defer stopNow()
	dials := 0
	c := &Client{Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials++
		stopNow()
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	res := c.Deliver(WithStop(context.Background(), stop), relay(ts.port), writeMsg(t, "x\n"), "s@x", []string{"a@x"})
	checkStatuses(t, res, "a@x=temp")
	if dials != 1 || len(ts.got()) != 0 || !strings.Contains(res[0].Text, "interrupted") {
		t.Errorf("%d connections, server got %+v, result %q", dials, ts.got(), res[0].Text)
	}
}

// A stop during a transaction lets it end but starts no other: the
// recipients a server refused for its recipient limit are deferred with
// its 452, for the next attempt.
func TestStopNoNewTransaction(t *testing.T) {
	stop, stopNow := context.WithCancel(context.Background())
	defer stopNow()
	cs := &capServer{caps: []int{1}, onEnd: stopNow}
	port, got := cs.start(t, ehloPipelining)
	res := (&Client{}).Deliver(WithStop(context.Background(), stop), relay(port), writeMsg(t, "x\n"), "s@x.test", []string{"a@x.test", "b@x.test"})
	checkStatuses(t, res, "a@x.test=ok b@x.test=temp")
	if !strings.Contains(res[1].Text, "452 4.5.3") {
		t.Errorf("text %q", res[1].Text)
	}
	if s, want := cs.summary(), "MAIL a@x.test b@x.test! DATA ."; s != want || len(got()) != 1 {
		t.Errorf("conversation %s, want %s", s, want)
	}
}
