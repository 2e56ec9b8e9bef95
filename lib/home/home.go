// Package home decides where omail's files live and where its sibling
// programs are, honouring environment overrides only when it is safe to.
package home

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Default is OMAIL_HOME when the environment does not say otherwise. The
// Makefile sets it at link time: -X omail/lib/home.Default=/var/omail.
var Default = "/var/omail"

// Env is a program's environment as KEY=VALUE strings, the shape run()
// receives, so programs are testable without touching os.Environ.
type Env []string

// Get returns the value of key, or "" when it is unset.
func (e Env) Get(key string) string {
	v, _ := e.Lookup(key)
	return v
}

// Lookup returns the value of key and whether it was set. The last
// definition wins, as getenv(3) implementations differ and execve
// passes duplicates through.
func (e Env) Lookup(key string) (string, bool) {
	for i := len(e) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(e[i], "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

// Setid reports whether this process runs set-uid or set-gid. Such a
// program must not let the caller's environment choose paths or programs.
//
// It is decided once per process: only exec makes a process set-id, and
// a set-id process that later drops to its real ids stays one here (the
// safe side). Trusted asks for every variable it reads, which for the
// resident omail-smtpd was four system calls per variable per message.
func Setid() bool { return setid() }

var setid = sync.OnceValue(func() bool {
	return os.Getuid() != os.Geteuid() || os.Getgid() != os.Getegid()
})

// Trusted returns the value of an environment override of a path or a
// program, or "" when the variable is unset or the process is set-id.
func (e Env) Trusted(key string) string {
	if Setid() {
		return ""
	}
	return e.Get(key)
}

// Dir returns OMAIL_HOME.
func (e Env) Dir() string {
	if h := e.Trusted("OMAIL_HOME"); h != "" {
		return h
	}
	return Default
}

// Program returns the path of a sibling program: the omail programs run
// each other from the directory of their own executable, so that bin/ in
// a checkout works without installing.
func Program(name string) string {
	dir, err := exeDir()
	if err != nil {
		return name
	}
	return filepath.Join(dir, name)
}

// exeDir is the directory of this process's executable, read once: it
// does not move while the process runs (and an upgrade that replaces the
// file must not make /proc/self/exe's "(deleted)" name the siblings').
var exeDir = sync.OnceValues(func() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	return filepath.Dir(exe), nil
})

// QueueProgram returns the program that puts a message into the queue:
// $OMAILQUEUE, then $QMAILQUEUE, then our own omail-queue.
func (e Env) QueueProgram() string {
	for _, k := range []string{"OMAILQUEUE", "QMAILQUEUE"} {
		if p := e.Trusted(k); p != "" {
			return p
		}
	}
	return e.ProgramPath("omail-queue")
}

// ProgramPath is Program, but tests and odd installs can point
// OMAIL_BINDIR at the directory holding the programs.
func (e Env) ProgramPath(name string) string {
	if d := e.Trusted("OMAIL_BINDIR"); d != "" {
		return filepath.Join(d, name)
	}
	return Program(name)
}
