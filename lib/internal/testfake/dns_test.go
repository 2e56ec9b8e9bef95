package testfake_test

import (
	"context"
	"errors"
	"net"
	"reflect"
	"testing"

	"omail/lib/internal/testfake"
	"omail/lib/route"
)

// Both forms satisfy routing's resolver.
var (
	_ route.Resolver = testfake.DNS{}
	_ route.Resolver = &testfake.DNS{}
)

func TestDNS(t *testing.T) {
	d := testfake.DNS{
		MX: map[string][]*net.MX{
			"mx.test":   {{Host: "b.test.", Pref: 20}, {Host: "a.test.", Pref: 10}},
			"null.test": {{Host: ".", Pref: 0}},
		},
		Hosts: map[string][]string{"a.test": {"192.0.2.1", "2001:db8::1"}},
		Fail:  map[string]bool{"broken.test": true},
	}
	ctx := context.Background()

	mx, err := d.LookupMX(ctx, "mx.test")
	if err != nil || len(mx) != 2 || mx[0].Host != "b.test." || mx[1].Pref != 10 {
		t.Fatalf("LookupMX(mx.test) = %v, %v", mx, err)
	}
	// The answer is a copy: editing it leaves the map as written.
	mx[0].Host, mx[1] = "changed.", nil
	if again, _ := d.LookupMX(ctx, "mx.test"); again[0].Host != "b.test." || again[1] == nil {
		t.Errorf("the map changed under the caller's edit: %v", again)
	}
	if mx, err := d.LookupMX(ctx, "null.test"); err != nil || len(mx) != 1 || mx[0].Host != "." {
		t.Errorf("null MX = %v, %v", mx, err)
	}

	addrs, err := d.LookupHost(ctx, "a.test")
	if err != nil || !reflect.DeepEqual(addrs, []string{"192.0.2.1", "2001:db8::1"}) {
		t.Fatalf("LookupHost(a.test) = %v, %v", addrs, err)
	}
	addrs[0] = "changed"
	if again, _ := d.LookupHost(ctx, "a.test"); again[0] != "192.0.2.1" {
		t.Errorf("the map changed under the caller's edit: %v", again)
	}

	for _, name := range []string{"nowhere.test", "a.test.", "A.TEST"} {
		if _, err := d.LookupHost(ctx, name); !isDNS(err, true, false) {
			t.Errorf("LookupHost(%s): %v, want not found", name, err)
		}
		if _, err := d.LookupMX(ctx, name); !isDNS(err, true, false) {
			t.Errorf("LookupMX(%s): %v, want not found", name, err)
		}
	}
	if _, err := d.LookupMX(ctx, "broken.test"); !isDNS(err, false, true) {
		t.Errorf("LookupMX(broken.test): %v, want temporary", err)
	}
	if _, err := d.LookupHost(ctx, "broken.test"); !isDNS(err, false, true) {
		t.Errorf("LookupHost(broken.test): %v, want temporary", err)
	}

	var zero testfake.DNS
	if _, err := zero.LookupMX(ctx, "mx.test"); !isDNS(err, true, false) {
		t.Errorf("zero DNS LookupMX: %v", err)
	}
}

func isDNS(err error, notFound, temporary bool) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound == notFound && de.IsTemporary == temporary
}

// TestDNSWithRoute: routing reads the fake's answers as it reads real
// DNS: MX by preference, the A fallback, a null MX and a missing domain
// permanent, a server failure temporary.
func TestDNSWithRoute(t *testing.T) {
	d := testfake.DNS{
		MX: map[string][]*net.MX{
			"mx.test":   {{Host: "b.test.", Pref: 20}, {Host: "a.test.", Pref: 10}},
			"null.test": {{Host: ".", Pref: 0}},
		},
		Hosts: map[string][]string{"nomx.test": {"192.0.2.9"}},
		Fail:  map[string]bool{"broken.test": true},
	}
	ctx := context.Background()
	hosts, err := route.Hosts(ctx, d, route.Dest{Domain: "mx.test", Port: 25}, nil)
	if err != nil || len(hosts) != 2 || hosts[0].Name != "a.test" || hosts[1].Name != "b.test" {
		t.Errorf("mx.test: %v, %v", hosts, err)
	}
	if hosts, err := route.Hosts(ctx, d, route.Dest{Domain: "nomx.test", Port: 25}, nil); err != nil || len(hosts) != 1 || hosts[0].Name != "nomx.test" {
		t.Errorf("nomx.test: %v, %v", hosts, err)
	}
	for domain, perm := range map[string]bool{"null.test": true, "nowhere.test": true, "broken.test": false} {
		_, err := route.Hosts(ctx, d, route.Dest{Domain: domain, Port: 25}, nil)
		var re *route.Error
		if !errors.As(err, &re) || re.Perm != perm {
			t.Errorf("%s: %v, want a route error with Perm %v", domain, err, perm)
		}
	}
}
