package injectcmd

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Mode is what the invocation asks for.
type Mode int

const (
	ModeSend    Mode = iota // read a message and queue it (sendmail -bm)
	ModeList                // -bp, mailq
	ModeFlush               // -q
	ModeSMTP                // -bs
	ModeAliases             // -bi, -I, newaliases: rebuild the aliases cdb (as omail-deliver -newaliases)
)

// Options is a parsed command line.
type Options struct {
	Mode        Mode
	UseHeaders  bool    // -t
	IgnoreDots  bool    // -i, -oi
	Sender      *string // -f, -r; nil when not given
	FullName    string  // -F
	Rcpts       []string
	IgnoredArgs []string
}

// usage is the error for a command line we do not understand.
type usage struct{ msg string }

func (u usage) Error() string { return u.msg }

// The flags, read as getopt reads them (sendmail 8, Postfix and qmail's
// sendmail all do): letters may be grouped ("-ti", "-it"), and a letter
// that takes a value takes the rest of its argument ("-fuser", "-tfuser")
// or else the next argument ("-f user").
const (
	// boolFlags take no value: -t, -i and -I mean something; verbose,
	// metoo, no-aliasing, initial submission and gateway are ignored.
	boolFlags = "tiIvmnUG"
	// valueFlags take a value: -f, -r, -F, -b and -o mean something;
	// the rest (-p protocol, -M macro, -N dsn, -R ret, -V envid, -h
	// hops, ...) are accepted and ignored.
	valueFlags = "frFboBCLMNORVXhp"
	// attachedFlags take the rest of their argument if any, never the
	// next one: -q[interval], -A[mc], -d[debug], -e[mode].
	attachedFlags = "qAde"
)

// ParseArgs reads a sendmail command line. argv[0] decides mailq and
// newaliases.
func ParseArgs(args []string) (*Options, error) {
	o := &Options{}
	if len(args) > 0 && filepath.Base(args[0]) == "mailq" {
		// mailq [ENDPOINT]: options (sendmail's -v, -Ac...) are ignored.
		o.Mode = ModeList
		for _, a := range args[1:] {
			if !strings.HasPrefix(a, "-") {
				o.Rcpts = append(o.Rcpts, a)
			}
		}
		return o, nil
	}
	if len(args) > 0 && filepath.Base(args[0]) == "newaliases" {
		// newaliases: sendmail -bi; options are ignored, as mailq's.
		o.Mode = ModeAliases
		for _, a := range args[1:] {
			if !strings.HasPrefix(a, "-") {
				return nil, usage{"usage: newaliases"}
			}
		}
		return o, nil
	}
	if len(args) > 0 {
		args = args[1:]
	}
	for len(args) > 0 {
		a := args[0]
		args = args[1:]
		if a == "--" {
			o.Rcpts = append(o.Rcpts, args...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			o.Rcpts = append(o.Rcpts, a)
			continue
		}
	group:
		for j := 1; j < len(a); j++ {
			flag, rest := a[j], a[j+1:]
			var v string
			switch {
			case strings.IndexByte(boolFlags, flag) >= 0:
				o.boolFlag(flag)
				continue
			case strings.IndexByte(attachedFlags, flag) >= 0:
				v = rest
			case strings.IndexByte(valueFlags, flag) >= 0:
				v = rest
				if rest == "" {
					if len(args) == 0 {
						return nil, usage{fmt.Sprintf("option -%c needs a value", flag)}
					}
					v, args = args[0], args[1:]
				}
			default:
				if j == 1 {
					return nil, usage{fmt.Sprintf("unknown option %s", a)}
				}
				return nil, usage{fmt.Sprintf("unknown option -%c in %s", flag, a)}
			}
			if err := o.valueFlag(flag, v, "-"+string(flag)+rest); err != nil {
				return nil, err
			}
			break group
		}
	}
	return o, nil
}

// boolFlag applies a flag without a value.
func (o *Options) boolFlag(flag byte) {
	switch flag {
	case 't':
		o.UseHeaders = true
	case 'i':
		o.IgnoreDots = true
	case 'I': // sendmail -I: newaliases
		o.Mode = ModeAliases
	default:
		o.IgnoredArgs = append(o.IgnoredArgs, "-"+string(flag))
	}
}

// valueFlag applies a flag with its value v; as is the flag as written
// with its attached part (for IgnoredArgs).
func (o *Options) valueFlag(flag byte, v, as string) error {
	switch flag {
	case 'f', 'r':
		o.Sender = &v
	case 'F':
		o.FullName = v
	case 'o':
		// -oi is the one -o option that changes anything (also as
		// sendmail's boolean -oiT, -oiy); the rest (-oem, -odi, -odb,
		// -oQ..., -oX...) are accepted and ignored.
		if v == "i" || len(v) > 1 && v[0] == 'i' && strings.IndexByte("tTyY", v[1]) >= 0 {
			o.IgnoreDots = true
		}
		o.IgnoredArgs = append(o.IgnoredArgs, as)
	case 'b':
		switch v {
		case "m", "":
			o.Mode = ModeSend
		case "p":
			o.Mode = ModeList
		case "s":
			o.Mode = ModeSMTP
		case "i":
			o.Mode = ModeAliases
		default:
			return usage{fmt.Sprintf("mode -b%s is not supported", v)}
		}
	case 'q':
		// -q flushes; -q15m (a daemon's interval) and -qR... are
		// flushes too: there is no sendmail daemon here to configure.
		o.Mode = ModeFlush
	default:
		o.IgnoredArgs = append(o.IgnoredArgs, as)
	}
	return nil
}
