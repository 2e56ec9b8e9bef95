package sdlisten

import "testing"

// FuzzParse: whatever LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES hold,
// Parse either refuses them or gives a count within bounds and one name
// per descriptor.
func FuzzParse(f *testing.F) {
	f.Add("1", "42", "")
	f.Add("2", "42", "smtp:smtps")
	f.Add("3", "42", "a:b")
	f.Add("-1", "42", "")
	f.Add("99999999999999999999", "42", "")
	f.Add("1", "0x2a", "")
	f.Fuzz(func(t *testing.T, fds, pid, names string) {
		env := map[string]string{"LISTEN_FDS": fds, "LISTEN_PID": pid, "LISTEN_FDNAMES": names}
		n, l, err := Parse(func(k string) string { return env[k] }, 42)
		if err != nil {
			return
		}
		if n < 0 || n > maxFDs || len(l) != n {
			t.Fatalf("Parse(%q, %q, %q) = %d %q", fds, pid, names, n, l)
		}
	})
}
