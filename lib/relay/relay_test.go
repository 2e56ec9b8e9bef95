package relay

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"omail/lib/control"
)

func TestParse(t *testing.T) {
	cases := []struct {
		in, out string
		quoted  bool
		routed  bool
		trick   string
		utf8    bool // needs SMTPUTF8
		bad     bool
	}{
		{in: "user@example.org", out: "user@example.org"},
		{in: "User@Example.ORG.", out: "User@example.org"},
		{in: "@a.example,@b.example:user@example.org", out: "user@example.org", routed: true},
		{in: "@[1.2.3.4]:user@example.org", out: "user@example.org", routed: true},
		{in: `"user"@example.org`, out: "user@example.org", quoted: true},
		{in: `"us\"er"@example.org`, out: `"us\"er"@example.org`, quoted: true, trick: "local part needs quotes"},
		{in: `"user@other.example"@example.org`, out: `"user@other.example"@example.org`, quoted: true, trick: "@ in the local part"},
		{in: `"a b"@example.org`, out: `"a b"@example.org`, quoted: true, trick: "local part needs quotes"},
		{in: ".user@example.org", out: `".user"@example.org`, trick: "local part needs quotes"},
		{in: `".user"@example.org`, out: `".user"@example.org`, quoted: true, trick: "local part needs quotes"},
		{in: "user%other.example@example.org", out: "user%other.example@example.org", trick: "percent hack"},
		{in: "other.example!user@example.org", out: "other.example!user@example.org", trick: "bang path"},
		{in: "user@1.2.3.4", out: "user@1.2.3.4", trick: "IP address without brackets"},
		{in: "user@[1.2.3.4]", out: "user@[1.2.3.4]"},
		{in: "user@[IPv6:::1]", out: "user@[ipv6:::1]"},
		{in: "postmaster", out: "postmaster", trick: "no domain"},
		{in: "", out: "", trick: "no domain"},
		{in: "user@", bad: true},
		{in: "@", bad: true},
		{in: "@a.example:", bad: true},
		{in: "a b@example.org", bad: true},
		{in: "user@exa mple.org", bad: true},
		{in: "user@example..org", bad: true},
		{in: "user@.example.org", bad: true},
		{in: "user@example.org..", bad: true},
		{in: "user@ex\x00ample.org", bad: true},
		{in: "user\r@example.org", bad: true},
		{in: `"unterminated@example.org`, bad: true},
		{in: `"a"b@example.org`, bad: true},
		{in: "@", bad: true},
		// RFC 6531: UTF-8, IDNA-checked domains (idn.go).
		{in: "用户@例子.广告", out: "用户@例子.广告", utf8: true},
		{in: "user@Bücher.Example.", out: "user@bücher.example", utf8: true},
		{in: "user@BÜCHER.example", out: "user@bücher.example", utf8: true},
		{in: "user@XN--Bcher-KVA.example", out: "user@xn--bcher-kva.example"}, // A-labels need no SMTPUTF8
		{in: "jürgen@example.org", out: "jürgen@example.org", utf8: true},
		{in: `"jürgen"@example.org`, out: "jürgen@example.org", quoted: true, utf8: true},
		{in: "user@b\xfccher.example", bad: true}, // Latin-1, not UTF-8
		{in: "j\xfcrgen@example.org", bad: true},
		{in: "user@bü-.example", bad: true}, // IDNA refuses a label ending in a hyphen
		{in: "user@bücher..example", bad: true},
		{in: "user@[bücher]", bad: true},
		{in: "user@bü cher.example", bad: true},
	}
	for _, c := range cases {
		a, err := Parse(c.in)
		if c.bad {
			if err == nil {
				t.Errorf("Parse(%q) = %+v, want an error", c.in, a)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", c.in, err)
			continue
		}
		if a.String() != c.out || a.Quoted != c.quoted || a.Routed != c.routed || a.Trick() != c.trick || a.UTF8() != c.utf8 {
			t.Errorf("Parse(%q) = %q quoted=%v routed=%v trick=%q utf8=%v, want %q %v %v %q %v",
				c.in, a.String(), a.Quoted, a.Routed, a.Trick(), a.UTF8(), c.out, c.quoted, c.routed, c.trick, c.utf8)
		}
	}
}

// TestTrickIgnoresSpelling: the refusal of a client that may not relay
// depends on the normal form only, so a local part that is not a
// dot-atom is refused alike whether the client quoted it or not, and a
// spelling that means a plain dot-atom is taken alike.
func TestTrickIgnoresSpelling(t *testing.T) {
	pairs := [][2]string{
		{".user@us.example", `".user"@us.example`},
		{"a..b@us.example", `"a..b"@us.example`},
		{"user.@us.example", `"user."@us.example`},
		{"u:x@us.example", `"u:x"@us.example`},
		{"user@us.example", `"user"@us.example`},
		{"a.b@us.example", `"a.b"@us.example`},
		{"user%far@us.example", `"user%far"@us.example`},
		{"user@far@us.example", `"user@far"@us.example`},
	}
	for _, p := range pairs {
		a, errA := Parse(p[0])
		b, errB := Parse(p[1])
		if errA != nil || errB != nil {
			t.Fatalf("Parse(%q), Parse(%q): %v, %v", p[0], p[1], errA, errB)
		}
		if a.String() != b.String() || a.Trick() != b.Trick() {
			t.Errorf("%q: %q trick %q; %q: %q trick %q; want the same", p[0], a.String(), a.Trick(), p[1], b.String(), b.Trick())
		}
	}
	// The review's probe: what a client that may not relay sends to our
	// domain us.example. Taken: the normal form is a plain address at
	// us.example. Everything else is refused, by syntax or by Trick.
	taken := map[string]string{
		"user@us.example": "user@us.example", "USER@US.EXAMPLE.": "USER@us.example",
		`"user"@us.example`: "user@us.example", "@far.example:user@us.example": "user@us.example",
		`"a.b"@us.example`: "a.b@us.example", `"\u"@us.example`: "u@us.example",
		"@[1.2.3.4]:user@us.example": "user@us.example", "@:user@us.example": "user@us.example",
		"user+x@us.example": "user+x@us.example", "user=far.example@us.example": "user=far.example@us.example",
		"user/far@us.example": "user/far@us.example", "|cmd@us.example": "|cmd@us.example",
		"user@us.example.": "user@us.example", "user@sub.us.example": "user@sub.us.example",
		"user@[192.0.2.1]": "user@[192.0.2.1]", "user@[us.example]": "user@[us.example]",
		"user@-us.example": "user@-us.example",
	}
	refused := []string{
		"user%far.example@us.example", `"user%far"@us.example`, "far!user@us.example",
		`"user@far"@us.example`, "user@far.example@us.example", "user@us.example..",
		`"a\"b"@us.example`, `"a..b"@us.example`, `".a"@us.example`, "@us.example:user%far@us.example",
		`""@us.example`, "user.@us.example", ".user@us.example", "a..b@us.example",
		`"user\@far"@us.example`, `"a"."b"@us.example`, `user@us.example"`, `"us er"@us.example`,
		`us"er"@us.example`, `"user"far@us.example`, "@a.example,user@us.example", "user@us.example:25",
		"user:far.example@us.example", `"u:x"@us.example`,
	}
	for in, want := range taken {
		a, err := Parse(in)
		if err != nil || a.Trick() != "" || a.String() != want {
			t.Errorf("Parse(%q) = %q trick %q, %v; want %q taken", in, a.String(), a.Trick(), err, want)
		}
	}
	for _, in := range refused {
		if a, err := Parse(in); err == nil && a.Trick() == "" {
			t.Errorf("Parse(%q) = %q with no trick: a client that may not relay would be taken", in, a.String())
		}
	}
}

func TestDropRoute(t *testing.T) {
	for in, want := range map[string]string{
		"@a.example:u@b.example":             "u@b.example",
		"@a.example,@[IPv6:::1]:u@b.example": "u@b.example",
		`@a.example:"u v"@b.example`:         `"u v"@b.example`,
		"u@b.example":                        "u@b.example",
		"u(c)@b.example":                     "u(c)@b.example",
		"@a.example":                         "@a.example", // no route: as it is
		"@a.example:":                        "@a.example:",
		`@"a:b".example:u@c`:                 `@"a:b".example:u@c`,
	} {
		if got := DropRoute(in); got != want {
			t.Errorf("DropRoute(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSplitPath(t *testing.T) {
	cases := []struct{ in, path, params string }{
		{"<a@b>", "a@b", ""},
		{" <a@b> SIZE=10  BODY=8BITMIME", "a@b", "SIZE=10  BODY=8BITMIME"},
		{`<"a>b"@c>`, `"a>b"@c`, ""},
		{"a@b SIZE=1", "a@b", "SIZE=1"},
		{"<>", "", ""},
	}
	for _, c := range cases {
		p, ps, err := SplitPath(c.in)
		if err != nil || p != c.path || ps != c.params {
			t.Errorf("SplitPath(%q) = %q, %q, %v", c.in, p, ps, err)
		}
	}
	for _, bad := range []string{"<a@b", "<a@b>x", ""} {
		if _, _, err := SplitPath(bad); err == nil {
			t.Errorf("SplitPath(%q): no error", bad)
		}
	}
}

func controlDir(t *testing.T, files map[string]string) *control.Dir {
	ctl := control.New(t.TempDir())
	os.MkdirAll(ctl.Path, 0o755)
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(ctl.Path, n), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return ctl
}

func TestRulesAndRebuild(t *testing.T) {
	ctl := controlDir(t, map[string]string{
		"me":            "me.example",
		"rcpthosts":     "one.example\n.wild.example\n",
		"morercpthosts": "# comment\nTwo.Example.\n.more.example\n",
		"relaymailfrom": "Boss@Corp.Example\n@friends.example\n",
		"relayclients":  "10.0.0.:\n192.168.\n",
		"relaydomains":  "pc.kiosk.lan\n.lan.example\n",
	})
	done, err := Rebuild(ctl)
	if err != nil || len(done) != 2 {
		t.Fatalf("Rebuild: %v %v", done, err)
	}
	// The text file of relaymailfrom is a fallback; remove it to see
	// that the cdb answers.
	os.Remove(ctl.File("relaymailfrom"))
	r, err := Load(ctl)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for d, want := range map[string]bool{
		"one.example": true, "ONE.example.": true, "x.wild.example": true, "wild.example": false,
		"two.example": true, "a.b.more.example": true, "more.example": false, "me.example": false, "": false,
	} {
		if got, err := r.Accepts(d); got != want || err != nil {
			t.Errorf("Accepts(%q) = %v %v", d, got, err)
		}
	}
	for _, c := range []struct {
		ip, host string
		want     bool
	}{
		{"10.0.0.7", "", true}, {"10.0.1.7", "", false}, {"192.168.9.9", "", true},
		{"1.2.3.4", "pc.kiosk.lan", true}, {"1.2.3.4", "PC.Kiosk.Lan.", true}, {"1.2.3.4", "a.lan.example", true},
		{"1.2.3.4", "lan.example", false}, {"1.2.3.4", "pc.kiosk.lan.evil", false}, {"", "", false},
	} {
		if got, _ := r.ClientMayRelay(c.ip, c.host); got != c.want {
			t.Errorf("ClientMayRelay(%q, %q) = %v", c.ip, c.host, got)
		}
	}
	for s, want := range map[string]bool{
		"boss@corp.example": true, "BOSS@CORP.EXAMPLE.": true, "worker@corp.example": false,
		"x@friends.example": true, "x@foes.example": false, "": false,
	} {
		a, _ := Parse(s)
		if got, err := r.SenderMayRelay(a); got != want || err != nil {
			t.Errorf("SenderMayRelay(%q) = %v %v", s, got, err)
		}
	}
}

func TestNoRcpthosts(t *testing.T) {
	ctl := controlDir(t, map[string]string{"me": "me.example", "virtualdomains": "v.example:joe\n"})
	r, err := Load(ctl)
	if err != nil {
		t.Fatal(err)
	}
	for d, want := range map[string]bool{"me.example": true, "v.example": true, "other.example": false} {
		if got, _ := r.Accepts(d); got != want {
			t.Errorf("Accepts(%q) = %v", d, got)
		}
	}
	// relaymailfrom without its cdb: the text file answers.
	ctl = controlDir(t, map[string]string{"me": "me.example", "relaymailfrom": "a@b.example\n"})
	if r, err = Load(ctl); err != nil {
		t.Fatal(err)
	}
	a, _ := Parse("a@b.example")
	if ok, _ := r.SenderMayRelay(a); !ok {
		t.Error("relaymailfrom text file not read")
	}
}

// FuzzParse: Parse never panics; what it accepts has a normal form that
// parses to itself, and a trick-free address holds no relay characters.
// DropRoute leaves what Parse reads the same, without the route.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"a@b", `"x y"@c.d`, "@r:a@b", "a%b@c", "a!b@c", "u@1.2.3.4", "u@[::1]", "<>", "@[::1],@b:u@c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := Parse(s)
		if err != nil || a.Null() {
			return
		}
		if d, err := Parse(DropRoute(s)); err != nil || d.Routed || d.String() != a.String() {
			t.Fatalf("%q: DropRoute %q parses as %q routed=%v, %v; want %q", s, DropRoute(s), d.String(), d.Routed, err, a.String())
		}
		if a.Trick() == "" {
			b, err := Parse(a.String())
			if err != nil || b.String() != a.String() {
				t.Fatalf("%q -> %q -> %q, %v", s, a.String(), b.String(), err)
			}
		}
		SplitPath(s)
	})
}

// Every control file Load reads is in Files, so that a cache of Rules
// notices its change: the names in Load's calls of the control package.
func TestFilesListsWhatLoadReads(t *testing.T) {
	src, err := os.ReadFile("rules.go")
	if err != nil {
		t.Fatal(err)
	}
	// The names Load passes to the control package, as string literals.
	re := regexp.MustCompile(`ctl\.(?:Exists|List|Entries|OpenCDB|Line|Int)\("([^"]+)"\)`)
	listed := map[string]bool{}
	for _, f := range Files {
		listed[f] = true
	}
	found := re.FindAllStringSubmatch(string(src), -1)
	if len(found) < len(Files) {
		t.Fatalf("found %d control file reads in rules.go, fewer than Files lists: the pattern is stale", len(found))
	}
	for _, m := range found {
		if !listed[m[1]] {
			t.Errorf("Load reads %s, which Files does not list", m[1])
		}
	}
}

// Load that fails after opening the cdb maps closes them: omail-smtpd
// loads the rules per connection, and a control file that cannot be
// read must not cost a descriptor each time.
func TestLoadErrorClosesMaps(t *testing.T) {
	h := t.TempDir()
	dir := filepath.Join(h, "control")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "morercpthosts"), []byte("example.org\n"), 0o644)
	ctl := control.New(h)
	if _, err := Rebuild(ctl); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(dir, "relayclients"), 0o755) // a directory: cannot be read as a list
	fds := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	before := fds()
	for range 20 {
		if r, err := Load(ctl); err == nil {
			r.Close()
			t.Fatal("rules loaded with relayclients a directory")
		}
	}
	if after := fds(); after != before {
		t.Errorf("%d descriptors open before, %d after 20 failed loads", before, after)
	}
}
