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
	ModeAliases             // -bi: rebuild the aliases cdb (omail-deliver -newaliases)
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

// flags sendmail implementations take with a value, which we accept and
// ignore (besides -f, -r and -F, which we use).
const ignoredWithValue = "BCLNORVXh"

// ParseArgs reads a sendmail command line. argv[0] decides mailq.
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
		// value returns the flag's value, attached ("-fuser") or the next
		// argument ("-f user").
		value := func(attached string) (string, error) {
			if attached != "" {
				return attached, nil
			}
			if len(args) == 0 {
				return "", usage{fmt.Sprintf("option %s needs a value", a)}
			}
			v := args[0]
			args = args[1:]
			return v, nil
		}
		flag, rest := a[1], a[2:]
		switch {
		case flag == 't' && rest == "":
			o.UseHeaders = true
		case flag == 'i' && rest == "":
			o.IgnoreDots = true
		case flag == 'o':
			// -oi is the one -o option that changes anything; the rest
			// (-oem, -odi, -odb, -oQ..., -oX...) are accepted and ignored.
			if rest == "i" {
				o.IgnoreDots = true
			} else if rest == "" {
				if _, err := value(""); err != nil {
					return nil, err
				}
			}
			o.IgnoredArgs = append(o.IgnoredArgs, a)
		case flag == 'f' || flag == 'r':
			v, err := value(rest)
			if err != nil {
				return nil, err
			}
			o.Sender = &v
		case flag == 'F':
			v, err := value(rest)
			if err != nil {
				return nil, err
			}
			o.FullName = v
		case flag == 'b':
			switch rest {
			case "m", "":
				o.Mode = ModeSend
			case "p":
				o.Mode = ModeList
			case "s":
				o.Mode = ModeSMTP
			case "i":
				o.Mode = ModeAliases
			default:
				return nil, usage{fmt.Sprintf("mode -b%s is not supported", rest)}
			}
		case flag == 'q':
			// -q flushes; -q15m (a daemon's interval) and -qR... are
			// flushes too: there is no sendmail daemon here to configure.
			o.Mode = ModeFlush
		case strings.IndexByte(ignoredWithValue, flag) >= 0:
			if _, err := value(rest); err != nil {
				return nil, err
			}
			o.IgnoredArgs = append(o.IgnoredArgs, a)
		case flag == 'v' || flag == 'm' || flag == 'n' || flag == 'U' || flag == 'd' || flag == 'G' || flag == 'A' || flag == 'e':
			// verbose, metoo, no-aliasing, initial submission, debug,
			// gateway, -Am/-Ac, error modes: harmless to ignore.
			o.IgnoredArgs = append(o.IgnoredArgs, a)
		default:
			return nil, usage{fmt.Sprintf("unknown option %s", a)}
		}
	}
	return o, nil
}
