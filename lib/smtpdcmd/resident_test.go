package smtpdcmd

import (
	"bufio"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/colinmarc/cdb"

	"omail/lib/control"
	"omail/lib/home"
	"omail/lib/internal/testfake"
	"omail/lib/qexit"
	"omail/lib/resident"
)

func TestParseOptions(t *testing.T) {
	o, err := parseOptions([]string{"-listen", "25", "-listen", "127.0.0.1:465", "-tls", "-x", "r.cdb", "-c", "7",
		"-u", "smtpd", "-listen", "[::1]:587", "/bin/checkpassword", "-x", "true"})
	if err != nil {
		t.Fatal(err)
	}
	want := options{listen: []listenSpec{{addr: ":25"}, {addr: "127.0.0.1:465", tls: true}, {addr: "[::1]:587"}},
		rules: "r.cdb", max: 7, user: "smtpd", args: []string{"/bin/checkpassword", "-x", "true"}}
	if !reflect.DeepEqual(o, want) {
		t.Errorf("got %+v\nwant %+v", o, want)
	}
	if o, err := parseOptions([]string{"-tls"}); err != nil || !o.tlsAll || o.max != defaultConcurrency {
		t.Errorf("-tls alone (systemd sockets): %+v %v", o, err)
	}
	if o, err := parseOptions([]string{"-listen", "25", "--", "-prog"}); err != nil || !reflect.DeepEqual(o.args, []string{"-prog"}) {
		t.Errorf("--: %+v %v", o, err)
	}
	for _, bad := range [][]string{
		{"-listen"}, {"-listen", ""}, {"-listen", "host.example:25"}, {"-listen", "127.0.0.1:x"},
		{"-listen", "70000"}, {"-listen", "::1:25"}, {"-c", "0", "-listen", "25"}, {"-c", "x"},
		{"-v"}, {"-tls", "-listen", "25"}, {"-u"},
	} {
		if _, err := parseOptions(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestRunResidentRefusals(t *testing.T) {
	env := setup(t, map[string]string{})
	for _, c := range []struct {
		args []string
		code int
		log  string
	}{
		{[]string{"-x", "r.cdb"}, qexit.Usage, "no -listen"},
		{[]string{"-listen", "bad"}, qexit.Usage, "bad port"},
		{[]string{"-listen", "127.0.0.1:0", "-u", "root"}, qexit.Usage, "root"},
		{[]string{"-listen", "127.0.0.1:0", "-u", "no-such-user-omail"}, qexit.Temp, "no-such-user-omail"},
	} {
		_, log, code := session(t, env, c.args, "")
		if code != c.code || !strings.Contains(log, c.log) {
			t.Errorf("%q: exit %d, log %q", c.args, code, log)
		}
	}
	_, log, code := session(t, env, []string{"-listen", "127.0.0.1:0"}, "")
	if os.Geteuid() == 0 {
		if code != qexit.Usage || !strings.Contains(log, "running as root") {
			t.Errorf("root without -u: exit %d, %q", code, log)
		}
	}
}

func TestConnEnv(t *testing.T) {
	base := connBase(home.Env{"PATH=/bin", "TCPREMOTEIP=6.6.6.6", "TCPREMOTEHOST=evil", "LISTEN_FDS=1", "RELAYCLIENT=", "SMTPS=1"})
	if want := []string{"PATH=/bin", "RELAYCLIENT="}; !reflect.DeepEqual(base, want) {
		t.Errorf("base %q, want %q", base, want)
	}
	local := &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 25}
	remote := &net.TCPAddr{IP: net.ParseIP("::ffff:127.0.0.2"), Port: 4321}
	env := connEnv(base, local, remote)
	want := home.Env{"PATH=/bin", "RELAYCLIENT=", "PROTO=TCP", "TCPLOCALIP=127.0.0.1", "TCPLOCALPORT=25", "TCPLOCALHOST=0",
		"TCPREMOTEIP=127.0.0.2", "TCPREMOTEPORT=4321"}
	if !reflect.DeepEqual(env, want) {
		t.Errorf("env %q\nwant %q", env, want)
	}
	// A new slice each time: one connection's additions never show
	// in another's.
	env2 := connEnv(base, local, &net.TCPAddr{IP: net.ParseIP("::1"), Port: 1})
	_ = append(env, "X=1")
	if env2.Get("TCPREMOTEIP") != "::1" || env2.Get("X") != "" || env.Get("TCPREMOTEIP") != "127.0.0.2" {
		t.Errorf("environments mixed: %q %q", env, env2)
	}
}

// residentTest serves d on a loopback listener with resident.Server;
// the fake queue program of setup records each message's environment.
func residentTest(t *testing.T, d *daemon) (addr string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	srv := &resident.Server{Listeners: []resident.Listener{{Listener: ln}}, Max: 4, Serve: d.serve, Name: "t"}
	go func() { srv.Run(stop); close(done) }()
	t.Cleanup(func() { close(stop); <-done })
	return ln.Addr().String()
}

// send runs one SMTP dialogue from source address src and returns the
// replies ("" when the server closed the connection at once).
func send(t *testing.T, addr, src, rcpt string) string {
	t.Helper()
	dl := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := dl.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	var out strings.Builder
	for _, cmd := range []string{"", "HELO x", "MAIL FROM:<a@b.example>", "RCPT TO:<" + rcpt + ">", "DATA", "hi\r\n.", "QUIT"} {
		if cmd != "" {
			c.Write([]byte(cmd + "\r\n"))
		}
		l, err := r.ReadString('\n')
		if err != nil {
			break
		}
		out.WriteString(l)
	}
	return out.String()
}

func writeCDB(t *testing.T, path string, rules map[string]string) {
	w, err := cdb.Create(path + ".tmp")
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range rules {
		w.Put([]byte(k), []byte(v))
	}
	if _, err := w.Freeze(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

func TestResidentRulesAndEnv(t *testing.T) {
	env := setup(t, map[string]string{"rcpthosts": "us.example"})
	h := env.Dir()
	rules := filepath.Join(h, "rules.cdb")
	writeCDB(t, rules, map[string]string{
		"127.0.0.2": "+RELAYCLIENT=-k\x00",
		"127.0.0.3": "D\x00",
		"127.0.0.":  "+DATABYTES=5\x00",
	})
	log := &testfake.Log{}
	d := &daemon{server: server{cache: configCache{ctl: control.New(h)}, log: log}, base: connBase(env), rules: rules}
	addr := residentTest(t, d)

	out := send(t, addr, "127.0.0.2", "u@far.example")
	if !strings.Contains(out, "250 2.0.0 ok") {
		t.Fatalf("127.0.0.2: %s\n%s", out, log.String())
	}
	menv, _ := os.ReadFile(filepath.Join(h, "env"))
	if string(menv) != "Fa@b.example\x00Tu@far.example-k\x00\x00" {
		t.Errorf("RELAYCLIENT not applied: envelope %q", menv)
	}
	qenv := readEnv(t, filepath.Join(h, "qenv"))
	for k, v := range map[string]string{"PROTO": "TCP", "TCPREMOTEIP": "127.0.0.2", "TCPLOCALIP": "127.0.0.1",
		"TCPLOCALHOST": "0", "RELAYCLIENT": "-k"} {
		if qenv[k] != v {
			t.Errorf("queue program's %s=%q, want %q (%v)", k, qenv[k], v, qenv)
		}
	}
	if qenv["TCPREMOTEPORT"] == "" || qenv["TCPLOCALPORT"] == "" {
		t.Errorf("ports missing: %v", qenv)
	}

	if out := send(t, addr, "127.0.0.3", "u@us.example"); out != "" {
		t.Errorf("denied client got %q", out)
	}
	// 127.0.0.4: the prefix rule; RELAYCLIENT from the connection
	// before must not have leaked.
	out = send(t, addr, "127.0.0.4", "u@far.example")
	if !strings.Contains(out, "553 5.7.1") {
		t.Errorf("127.0.0.4 could relay: %s", out)
	}
	// A new cdb counts from the next connection on.
	writeCDB(t, rules, map[string]string{"": "+RELAYCLIENT=\x00"})
	if out := send(t, addr, "127.0.0.3", "u@far.example"); !strings.Contains(out, "250 2.0.0 ok") {
		t.Errorf("rebuilt rules not used: %s", out)
	}
	os.Remove(rules)
	if out := send(t, addr, "127.0.0.2", "u@us.example"); out != "" {
		t.Errorf("served without its rules: %q", out)
	}
	for _, want := range []string{"127.0.0.3 denied by rule \"127.0.0.3\"", "127.0.0.2 dropped: cannot read rules"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log.String())
		}
	}
}

func readEnv(t *testing.T, path string) map[string]string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, l := range strings.Split(string(b), "\x00") {
		if k, v, ok := strings.Cut(l, "="); ok {
			m[k] = v
		}
	}
	return m
}
