package delivercmd

import (
	"context"
	"io"
	"reflect"
	"strings"
	"testing"

	"omail/lib/outcome"
	"omail/lib/remote"
	"omail/lib/route"
)

func TestRequestRoundTrip(t *testing.T) {
	for _, c := range []struct {
		dest   route.Dest
		sender string
		rcpts  []string
	}{
		{route.Dest{Domain: "example.org", Port: 25}, "", []string{"a@example.org"}},
		{route.Dest{Domain: "example.org", Relay: "[127.0.0.1]", Port: 2525, RequireTLS: true,
			Auth: &route.Credentials{User: "kiosk", Password: "pa:ss word"}}, "s@kiosk.example", []string{"a@example.org", "b@example.org"}},
	} {
		d, s, r, err := parseRequest(request(c.dest, c.sender, c.rcpts))
		if err != nil || !reflect.DeepEqual(d, c.dest) || s != c.sender || !reflect.DeepEqual(r, c.rcpts) {
			t.Errorf("round trip of %+v: %+v %q %q %v", c, d, s, r, err)
		}
	}
	for _, bad := range []string{"", "R2\x00a", "R1\x00d\x00r\x00notaport\x000\x000\x00\x00\x00s\x00r"} {
		if _, _, _, err := parseRequest([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func FuzzParseRequest(f *testing.F) {
	f.Add(request(route.Dest{Domain: "x.org", Relay: "r", Port: 25}, "s@x", []string{"a@b"}))
	f.Add([]byte("R1\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, s, r, err := parseRequest(b)
		if err != nil {
			return
		}
		if len(r) == 0 {
			t.Fatalf("no recipients from %q", b)
		}
		d2, s2, r2, err := parseRequest(request(d, s, r))
		if err != nil || !reflect.DeepEqual(d, d2) || s != s2 || !reflect.DeepEqual(r, r2) {
			t.Fatalf("re-encoding %q differs", b)
		}
	})
}

func TestLocalTrouble(t *testing.T) {
	r := func(texts ...string) []outcome.Result {
		var out []outcome.Result
		for _, x := range texts {
			out = append(out, outcome.Result{Status: outcome.Temp, Text: x})
		}
		return out
	}
	for _, c := range []struct {
		res  []outcome.Result
		want bool
	}{
		{r("4.3.0 DKIM key for example.org (selector s) unusable: denied", "4.3.0 DKIM key for example.org (selector s) unusable: denied"), true},
		{r("4.3.0 cannot open the message: gone"), true},
		{r("4.4.1 cannot connect to [127.0.0.1]"), false},
		{r("4.3.0 x", "[127.0.0.1] said: 451 later"), false},
		{nil, false},
	} {
		if got := localTrouble(c.res); got != c.want {
			t.Errorf("localTrouble(%v) = %v, want %v", c.res, got, c.want)
		}
	}
}

// A root omail-deliver starts no child for a destination that must wait
// (smtpauth unusable) and puts it in no back-off.
func TestRemoteViaChildWait(t *testing.T) {
	b := &remote.Backoff{}
	f := remoteViaChild(nil, "/nonexistent/omail-deliver", 65534, 65534, &remote.Limiter{Total: 1, PerHost: 1}, b, io.Discard)
	d := route.Dest{Domain: "x.test", Relay: "smart.example", Port: 25, Wait: "4.3.5 control file smtpauth: readable by others"}
	res := f(context.Background(), d, "/nonexistent/msg", "s@x", []string{"a@x.test", "b@x.test"})
	if len(res) != 2 || res[0].Status != outcome.Temp || res[0].Text != d.Wait || res[1].Text != d.Wait {
		t.Fatalf("%+v", res)
	}
	if _, ok := b.Until(d.Key()); ok {
		t.Error("back-off for our own trouble")
	}
}

func TestRemoteChildOwnProcessGroup(t *testing.T) {
	a := remoteChildAttr(7, 8)
	if !a.Setpgid || a.Credential == nil || a.Credential.Uid != 7 || a.Credential.Gid != 8 || len(a.Credential.Groups) != 0 {
		t.Errorf("remote child attributes %+v", a)
	}
}

// As root: after the first stop, a delivery waiting for a connection
// slot stops waiting and starts no child; one that finds a free slot
// starts none either.
func TestRemoteViaChildStopped(t *testing.T) {
	l := &remote.Limiter{Total: 1, PerHost: 1}
	dest := route.Dest{Domain: "x.test", Port: 25}
	f := remoteViaChild(nil, "/nonexistent/omail-deliver", 65534, 65534, l, &remote.Backoff{}, io.Discard)
	stop, stopNow := context.WithCancel(context.Background())
	stopNow() // the first SIGTERM
	ctx := remote.WithStop(context.Background(), stop)
	if res := f(ctx, dest, "/dev/null", "s@x", []string{"a@x.test"}); !strings.Contains(res[0].Text, "4.4.2 delivery interrupted") {
		t.Errorf("free slot, after the stop: %q", res[0].Text)
	}
	release, err := l.Acquire(context.Background(), dest.Key())
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if res := f(ctx, dest, "/dev/null", "s@x", []string{"a@x.test"}); !strings.Contains(res[0].Text, "4.4.2 delivery interrupted") {
		t.Errorf("waiting for a slot, after the stop: %q", res[0].Text)
	}
}
