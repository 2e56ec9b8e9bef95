package injectcmd

import (
	"fmt"
	"strings"
	"time"

	"omail/lib/addr"
)

// HeaderParams are the inputs of FixHeader.
type HeaderParams struct {
	UseHeaders bool   // -t: take recipients from To, Cc, Bcc
	From       string // address for a missing From:
	FullName   string // display name for a missing From:
	Date       time.Time
	MessageID  string
}

// Fixed is a completed header and the recipients it names (with -t).
type Fixed struct {
	Fields []Field
	Rcpts  []string
}

// FixHeader does what sendmail and qmail-inject do to a header: with -t
// it collects the recipients of To, Cc and Bcc (or of the Resent- fields
// when the message is being resent); it always removes Bcc and
// Resent-Bcc, so blind copies stay blind; it adds From, Date and
// Message-ID where they are missing. A recipient field that names two
// addresses without a comma between them (addr.ParseList) is an error.
func FixHeader(in []Field, p HeaderParams) (Fixed, error) {
	var out Fixed
	resent := false
	for _, f := range in {
		if strings.HasPrefix(strings.ToLower(f.Name), "resent-") {
			resent = true
		}
	}
	var rcptFields []string
	if resent {
		rcptFields = []string{"Resent-To", "Resent-Cc", "Resent-Bcc"}
	} else {
		rcptFields = []string{"To", "Cc", "Bcc"}
	}
	has := map[string]bool{}
	for _, f := range in {
		has[strings.ToLower(f.Name)] = true
		if p.UseHeaders {
			for _, n := range rcptFields {
				if f.Is(n) {
					list, err := addr.ParseList(f.Value())
					if err != nil {
						return Fixed{}, fmt.Errorf("%s: %w", f.Name, err)
					}
					out.Rcpts = append(out.Rcpts, list...)
				}
			}
		}
		if f.Is("Bcc") || f.Is("Resent-Bcc") {
			continue
		}
		out.Fields = append(out.Fields, f)
	}
	add := func(name, value string) {
		out.Fields = append(out.Fields, Field{Name: name, Raw: []byte(name + ": " + value + "\n")})
	}
	if !has["from"] {
		if p.FullName != "" {
			add("From", quoteName(p.FullName)+" <"+p.From+">")
		} else {
			add("From", p.From)
		}
	}
	if !has["date"] {
		add("Date", p.Date.Format("Mon, 02 Jan 2006 15:04:05 -0700"))
	}
	if !has["message-id"] {
		add("Message-ID", p.MessageID)
	}
	return out, nil
}

// quoteName makes a display name safe in a From: field: quoted when it
// holds specials, with quotes and backslashes escaped and line breaks
// removed so it cannot start a new header field.
func quoteName(n string) string {
	n = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, n)
	if !strings.ContainsAny(n, `()<>[]:;@\,."`) {
		return n
	}
	n = strings.ReplaceAll(n, `\`, `\\`)
	n = strings.ReplaceAll(n, `"`, `\"`)
	return `"` + n + `"`
}
