package sdlisten

import (
	"net"
	"reflect"
	"testing"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParse(t *testing.T) {
	for _, c := range []struct {
		env   map[string]string
		n     int
		names []string
		bad   bool
	}{
		{env: map[string]string{}},
		{env: map[string]string{"LISTEN_FDS": "2", "LISTEN_PID": "42"}, n: 2, names: []string{"", ""}},
		{env: map[string]string{"LISTEN_FDS": "2", "LISTEN_PID": "43"}}, // another process's
		{env: map[string]string{"LISTEN_FDS": "2", "LISTEN_PID": "42", "LISTEN_FDNAMES": "smtp:smtps"}, n: 2, names: []string{"smtp", "smtps"}},
		{env: map[string]string{"LISTEN_FDS": "1", "LISTEN_PID": "42", "LISTEN_FDNAMES": "a:b"}, bad: true},
		{env: map[string]string{"LISTEN_FDS": "x", "LISTEN_PID": "42"}, bad: true},
		{env: map[string]string{"LISTEN_FDS": "-1", "LISTEN_PID": "42"}, bad: true},
		{env: map[string]string{"LISTEN_FDS": "99999", "LISTEN_PID": "42"}, bad: true},
		{env: map[string]string{"LISTEN_FDS": "1", "LISTEN_PID": "zz"}, bad: true},
		{env: map[string]string{"LISTEN_FDS": "1"}},
	} {
		n, names, err := Parse(env(c.env), 42)
		if (err != nil) != c.bad || n != c.n || !reflect.DeepEqual(names, c.names) {
			t.Errorf("%v: got %d %q %v", c.env, n, names, err)
		}
	}
}

func TestListening(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	lf, _ := l.(*net.TCPListener).File()
	defer lf.Close()
	if !Listening(int(lf.Fd())) {
		t.Error("a listening socket is not seen as one")
	}
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cf, _ := c.(*net.TCPConn).File()
	defer cf.Close()
	if Listening(int(cf.Fd())) {
		t.Error("a connected socket (systemd Accept=yes) is taken for a listening one")
	}
}
