package delivercmd

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"omail/lib/control"
	"omail/lib/dkim"
	"omail/lib/home"
	"omail/lib/qexit"
)

func TestDKIMKeygen(t *testing.T) {
	h := t.TempDir()
	if err := os.Mkdir(filepath.Join(h, "control"), 0o755); err != nil {
		t.Fatal(err)
	}
	env := home.Env{"OMAIL_HOME=" + h}
	run := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		rc := Run(append([]string{"omail-deliver", "-dkimkeygen"}, args...), env, nil, &out, &errOut)
		return rc, out.String(), errOut.String()
	}
	for _, c := range []struct {
		args []string
		kind string
	}{{[]string{"Example.ORG", "rsa1"}, "k=rsa"}, {[]string{"-ed25519", "example.org", "ed1"}, "k=ed25519"}} {
		rc, out, errOut := run(c.args...)
		if rc != qexit.OK {
			t.Fatalf("%v: exit %d: %s", c.args, rc, errOut)
		}
		sel := c.args[len(c.args)-1]
		rel := "dkim/" + sel + "._domainkey.example.org.pem"
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(lines) != 5 || !strings.HasPrefix(lines[2], sel+"._domainkey.example.org. IN TXT ( \"v=DKIM1; "+c.kind+"; p=") || lines[4] != "example.org:"+sel+":"+rel {
			t.Errorf("%v printed\n%s", c.args, out)
		}
		// The key is the one the record publishes, and dkimkeys' line finds it.
		keys, err := dkim.Parse([]string{lines[4]}, control.New(h).Path)
		if err != nil {
			t.Fatal(err)
		}
		path := keys.For("example.org")[0].Path
		k, err := dkim.ReadKey(path)
		if err != nil {
			t.Fatal(err)
		}
		txt, _ := dkim.TXTValue(k)
		if lines[2] != dkim.ZoneLine("example.org", sel, txt) {
			t.Errorf("the record is not the key's: %s", lines[2])
		}
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("key file %v %v", fi.Mode(), err)
		}
		// Never over an existing key.
		before, _ := os.ReadFile(path)
		if rc, _, errOut := run(c.args...); rc != qexit.Perm || !strings.Contains(errOut, "not overwritten") {
			t.Errorf("second run: exit %d: %s", rc, errOut)
		}
		if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
			t.Error("the key was overwritten")
		}
	}
	for _, bad := range [][]string{{}, {"example.org"}, {"-dsa", "example.org", "s"}, {"ex/ample.org", "s"}, {"example.org", "../s"}, {"a", "b", "c"}} {
		if rc, _, errOut := run(bad...); rc != qexit.Usage || errOut == "" {
			t.Errorf("%q: exit %d %q", bad, rc, errOut)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(h, "control/dkim/.keygen*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}
