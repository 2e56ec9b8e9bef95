package smtpdcmd

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"omail/lib/control"
	"omail/lib/home"
	"omail/lib/qexit"
)

func TestParseMilterOptions(t *testing.T) {
	for _, c := range []struct {
		args []string
		want milterOptions
	}{
		{nil, milterOptions{}},
		{[]string{"inet:1@127.0.0.1"}, milterOptions{addr: "inet:1@127.0.0.1"}},
		{[]string{"unix:/s", "-u", "omail"}, milterOptions{addr: "unix:/s", user: "omail"}},
		{[]string{"-u", "omail"}, milterOptions{user: "omail"}},
	} {
		got, err := parseMilterOptions(c.args)
		if err != nil || got != c.want {
			t.Errorf("parseMilterOptions(%q) = %+v %v, want %+v", c.args, got, err, c.want)
		}
	}
	for _, args := range [][]string{{"-u"}, {"-u", ""}, {"a", "b"}, {"-x", "f"}, {"-u", "x", "inet:1@127.0.0.1"}} {
		if o, err := parseMilterOptions(args); err == nil {
			t.Errorf("parseMilterOptions(%q) = %+v, want an error", args, o)
		}
	}
}

func TestMilterAddr(t *testing.T) {
	dir := t.TempDir()
	ctl := control.New(dir)
	os.MkdirAll(ctl.Path, 0o755)
	a, err := milterAddr(ctl, "")
	if err != nil || a.String() != "tcp:127.0.0.1:9801" {
		t.Fatalf("default: %v %v", a, err)
	}
	os.WriteFile(ctl.File("milterport"), []byte("inet6:10025@[::1]\n"), 0o644)
	if a, err = milterAddr(ctl, ""); err != nil || a.String() != "tcp:[::1]:10025" {
		t.Fatalf("milterport: %v %v", a, err)
	}
	if a, err = milterAddr(ctl, "unix:/run/m"); err != nil || a.String() != "unix:/run/m" {
		t.Fatalf("argument over milterport: %v %v", a, err)
	}
	os.WriteFile(ctl.File("milterport"), []byte("9801\n"), 0o644)
	if _, err = milterAddr(ctl, ""); err == nil || !strings.Contains(err.Error(), "milterport") {
		t.Fatalf("bad milterport: %v", err)
	}
}

// Bad arguments to the two modes are exit 100 and touch nothing.
func TestMilterAndDracArguments(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "control"), 0o755)
	env := home.Env{"OMAIL_HOME=" + dir}
	for _, args := range [][]string{
		{"-milter", "inet:9801@localhost"}, {"-milter", "a", "b"},
		{"-drac"}, {"-drac", "../x"}, {"-drac", "1.2.3.4", "5.6.7.8"}, {"-drac", "1.2.3.4/x"},
	} {
		var out, errb bytes.Buffer
		if code := Run(append([]string{"omail-smtpd"}, args...), env, strings.NewReader(""), &out, &errb); code != qexit.Usage {
			t.Errorf("%q: exit %d, want 100 (%s)", args, code, errb.String())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "drac")); !os.IsNotExist(err) {
		t.Errorf("a refused -drac made the directory: %v", err)
	}
}

func TestDracRecords(t *testing.T) {
	dir := t.TempDir()
	ctl := control.New(dir)
	os.MkdirAll(ctl.Path, 0o755)
	var errb bytes.Buffer
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if code := runDrac(ctl, []string{"::FFFF:192.0.2.1"}, now, &errb); code != qexit.OK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	fi, err := os.Stat(filepath.Join(dir, "drac", "192.0.2.1"))
	if err != nil || !fi.ModTime().Equal(now) {
		t.Fatalf("record: %v %v", fi, err)
	}
	if !strings.Contains(errb.String(), "drac 192.0.2.1 may relay for 1800 seconds") {
		t.Errorf("log: %s", errb.String())
	}
	// A dracexpiry that is not a number: 111, as any configuration trouble.
	os.WriteFile(ctl.File("dracexpiry"), []byte("x\n"), 0o644)
	if code := runDrac(ctl, []string{"192.0.2.1"}, now, &errb); code != qexit.Temp {
		t.Errorf("bad dracexpiry: exit %d, want 111", code)
	}
}
