package local

import (
	"bufio"
	"bytes"
	"io"
	"strings"

	"omail/lib/outcome"
)

// MaxHops is the number of Received: and Delivered-To: lines a message
// may carry; one more and it is taken to be looping.
const MaxHops = 100

// checkLoop bounces a message that already carries the Delivered-To line
// this delivery would add, or more than MaxHops Received:/Delivered-To:
// lines.
func (x *delivery) checkLoop() *outcome.Result {
	hops, seen, err := scanHeader(x.reader(), x.rcpt)
	if err != nil {
		r := outcome.Tempf("4.3.0 cannot read message: %v", err)
		return &r
	}
	if seen {
		r := outcome.Permf("5.4.6 mail loop: message already delivered to %s", x.rcpt)
		return &r
	}
	if hops > MaxHops {
		r := outcome.Permf("5.4.6 mail loop: %d Received/Delivered-To lines", hops)
		return &r
	}
	return nil
}

// scanHeader reads the header of a message (up to the first empty line)
// and counts its Received: and Delivered-To: fields, and reports whether
// one of the Delivered-To: fields names rcpt (without regard to case).
// Long lines are read in pieces: only the start of a line matters.
func scanHeader(r io.Reader, rcpt string) (hops int, seen bool, err error) {
	br := bufio.NewReaderSize(r, 4096)
	start := true
	for {
		line, err := br.ReadSlice('\n')
		if err != nil && err != bufio.ErrBufferFull && err != io.EOF {
			return 0, false, err
		}
		if start {
			if len(line) == 0 || line[0] == '\n' || bytes.Equal(line, []byte("\r\n")) {
				return hops, seen, nil
			}
			if field(line, "received:") {
				hops++
			} else if field(line, "delivered-to:") {
				hops++
				v := strings.TrimSpace(string(line[len("delivered-to:"):]))
				if strings.EqualFold(v, rcpt) {
					seen = true
				}
			}
		}
		start = err != bufio.ErrBufferFull
		if err == io.EOF {
			return hops, seen, nil
		}
	}
}

func field(line []byte, name string) bool {
	return len(line) >= len(name) && strings.EqualFold(string(line[:len(name)]), name)
}
