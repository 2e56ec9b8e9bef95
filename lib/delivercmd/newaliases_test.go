package delivercmd

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"omail/lib/aliases"
	"omail/lib/control"
	"omail/lib/home"
	"omail/lib/local"
	"omail/lib/outcome"
	"omail/lib/qexit"
)

func runDeliver(t *testing.T, h string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	rc := Run(args, home.Env{"OMAIL_HOME=" + h}, nil, &out, &errOut)
	return rc, out.String(), errOut.String()
}

// names in the directory, to see that a failed build leaves no
// temporary file behind.
func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

const aliasesText = `# site aliases
PostMaster: root
root: bob, ann@example.org
"staff" : bob,
	# inside
    carl@example.org
list: "|echo a, b"
`

// -newaliases, and the program run as newaliases, compile the aliases
// into the cdb lib/aliases reads: every name finds what the text file
// gives. A bad line is named, with every other bad line, and the old
// cdb is left exactly as it was.
func TestNewaliases(t *testing.T) {
	h := t.TempDir()
	ctl := control.New(h)
	os.MkdirAll(ctl.Path, 0o755)
	os.WriteFile(ctl.File("aliases"), []byte(aliasesText), 0o644)
	want, err := aliases.Parse(strings.NewReader(aliasesText))
	if err != nil {
		t.Fatal(err)
	}
	for _, argv := range [][]string{{"omail-deliver", "-newaliases"}, {"/usr/sbin/newaliases"}} {
		os.Remove(ctl.File("aliases.cdb"))
		rc, out, errOut := runDeliver(t, h, argv...)
		if rc != qexit.OK || !strings.Contains(out, "4 aliases") {
			t.Fatalf("%v: exit %d: %s %s", argv, rc, out, errOut)
		}
	}
	// The text file no longer counts once the cdb is there.
	os.WriteFile(ctl.File("aliases"), []byte("broken, not read\n"), 0o644)
	for _, name := range []string{"postmaster", "ROOT", "staff", "list"} {
		got, ok, err := aliases.LookupIn(ctl, name)
		w, _ := want.Lookup(name)
		if err != nil || !ok || !reflect.DeepEqual(got, w) {
			t.Errorf("%s: %+v %v %v, want %+v", name, got, ok, err, w)
		}
	}
	if _, ok, err := aliases.LookupIn(ctl, "bob"); ok || err != nil {
		t.Errorf("bob: %v %v", ok, err)
	}

	old, _ := os.ReadFile(ctl.File("aliases.cdb"))
	before := names(t, ctl.Path)
	os.WriteFile(ctl.File("aliases"), []byte("a: b\nno colon here\nc: <d>\nok: e\n"), 0o644)
	rc, out, errOut := runDeliver(t, h, "omail-deliver", "-newaliases")
	if rc != qexit.Perm || out != "" {
		t.Fatalf("bad aliases: exit %d, %q", rc, out)
	}
	for _, s := range []string{"line 2:", "line 3:", "aliases.cdb not changed"} {
		if !strings.Contains(errOut, s) {
			t.Errorf("errors lack %q:\n%s", s, errOut)
		}
	}
	if now, _ := os.ReadFile(ctl.File("aliases.cdb")); !bytes.Equal(now, old) {
		t.Error("a failed build changed aliases.cdb")
	}
	if after := names(t, ctl.Path); !reflect.DeepEqual(after, before) {
		t.Errorf("a failed build left files: %v, was %v", after, before)
	}
	os.Remove(ctl.File("aliases"))
	if rc, _, _ := runDeliver(t, h, "newaliases"); rc != qexit.Perm {
		t.Errorf("no aliases file: exit %d", rc)
	}
	if rc, _, _ := runDeliver(t, h, "omail-deliver", "-newaliases", "x"); rc != qexit.Usage {
		t.Errorf("an argument: exit %d", rc)
	}
}

// -newu compiles users/assign into the cdb lib/local reads: a delivery
// finds the same users from the cdb alone. A bad or unfinished file is
// refused line by line and the old cdb is kept.
func TestNewu(t *testing.T) {
	h := t.TempDir()
	ctl := control.New(h)
	os.MkdirAll(ctl.Path, 0o755)
	os.WriteFile(ctl.File("me"), []byte("test.example\n"), 0o644)
	os.WriteFile(ctl.File("mailspool"), []byte(filepath.Join(h, "spool")+"\n"), 0o644)
	users := filepath.Join(h, "users")
	boss, lists := filepath.Join(h, "boss"), filepath.Join(h, "lists")
	for _, d := range []string{users, boss, lists, filepath.Join(h, "spool")} {
		os.MkdirAll(d, 0o755)
	}
	os.WriteFile(filepath.Join(boss, ".omail"), []byte("./box\n"), 0o644)
	os.WriteFile(filepath.Join(lists, ".omail-x-default"), []byte("./lists.box\n"), 0o644)
	// Root's ids: a root test run may deliver as root only for root.
	uid, gid := os.Getuid(), os.Getgid()
	name := "root"
	if uid != 0 {
		name = "nobody-in-particular"
	}
	assign := fmt.Sprintf("=Boss:%s:%d:%d:%s:::\n\n+list-:%s:%d:%d:%s:-:x-:\n.\n=late:x:1:1:/x:::\n", name, uid, gid, boss, name, uid, gid, lists)
	os.WriteFile(filepath.Join(users, "assign"), []byte(assign), 0o644)
	rc, out, errOut := runDeliver(t, h, "omail-deliver", "-newu")
	if rc != qexit.OK || !strings.Contains(out, "2 entries") {
		t.Fatalf("exit %d: %s %s", rc, out, errOut)
	}
	os.Remove(filepath.Join(users, "assign")) // the cdb alone must do
	msg := filepath.Join(h, "msg")
	os.WriteFile(msg, []byte("Subject: x\n\nhello\n"), 0o644)
	d := local.New(home.Env{"OMAIL_HOME=" + h})
	for rcpt, box := range map[string]string{"boss@test.example": filepath.Join(boss, "box"), "list-foo@test.example": filepath.Join(lists, "lists.box")} {
		r := d.Deliver(context.Background(), msg, "a@b.example", rcpt)
		if r.Status != outcome.OK || !strings.Contains(r.Text, box) {
			t.Errorf("%s: %v %q, want delivery to %s", rcpt, r.Status, r.Text, box)
		}
	}
	if r := d.Deliver(context.Background(), msg, "a@b.example", "late@test.example"); r.Status != outcome.Perm {
		t.Errorf("late (after the dot): %v %q", r.Status, r.Text)
	}

	old, _ := os.ReadFile(filepath.Join(users, "assign.cdb"))
	for in, wantErr := range map[string][]string{
		"=a:a:1:1:/h:::\n":                                {`no "." line`},
		"=a:a:x:1:/h:::\nbob:b:1:1:/h:::\n.\n":            {"line 1:", "bad uid", "line 2:", `starts with "=" or "+"`},
		"=a:a:1:1:rel:::\n=b:b:1:1:/h\n.\n":               {"line 1:", "absolute", "line 2:", "want =b:user"},
		"=a:a:1:1:/h:::\n=A:a:1:1:/h:::\n.\n":             {"line 2:", "first on line 1"},
		"=a::1:1:/h:::\n=:a:1:1:/h:::\n+p:a:1:-1:/h::\n.": {"line 1:", "no user name", "line 2:", "empty local part", "line 3:", "bad gid"},
	} {
		os.WriteFile(filepath.Join(users, "assign"), []byte(in), 0o644)
		before := names(t, users)
		rc, _, errOut := runDeliver(t, h, "omail-deliver", "-newu")
		if rc != qexit.Perm {
			t.Errorf("%q: exit %d", in, rc)
		}
		for _, s := range append(wantErr, "assign.cdb not changed") {
			if !strings.Contains(errOut, s) {
				t.Errorf("%q: errors lack %q:\n%s", in, s, errOut)
			}
		}
		if now, _ := os.ReadFile(filepath.Join(users, "assign.cdb")); !bytes.Equal(now, old) {
			t.Errorf("%q: a failed build changed assign.cdb", in)
		}
		if after := names(t, users); !reflect.DeepEqual(after, before) {
			t.Errorf("%q: left files %v", in, after)
		}
	}
}
