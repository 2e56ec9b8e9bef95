package packer

import (
	"bufio"
	"bytes"
	"io"
)

// headLimit bounds what urgent reads of a message: the header fields
// that matter come first, and a header longer than this is not worth
// reading to the end for a packing order.
const headLimit = 64 << 10

// urgent reports whether a message's header asks to go first:
// "Priority: urgent" (RFC 2156) or "X-Priority: 1" (what mail clients
// write for "highest", often as "1 (Highest)"). It reads at most
// headLimit bytes of r, up to the empty line that ends the header; a
// field cut by the limit is not looked at. Only a read error is an
// error: any bytes at all are some header.
func urgent(r io.Reader) (bool, error) {
	lr := &io.LimitedReader{R: r, N: headLimit}
	br := bufio.NewReaderSize(lr, 4096)
	var field []byte // the field being read, its continuation lines unfolded
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A line longer than the buffer: no field we look for is
			// that long. It ends the field before it, unless it
			// continues that field, which is then too long as well.
			if line[0] != ' ' && line[0] != '\t' && askedFirst(field) {
				return true, nil
			}
			field = nil
			for err == bufio.ErrBufferFull {
				_, err = br.ReadSlice('\n')
			}
			if err == nil {
				continue
			}
			if err == io.EOF {
				return false, nil
			}
			return false, err
		}
		if err != nil && err != io.EOF {
			return false, err
		}
		// A last line without its newline is whole when the message
		// ends there, cut when the limit ended it.
		complete := err == nil || lr.N > 0
		line = bytes.TrimRight(line, "\r\n")
		if complete && len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
			if field != nil {
				field = append(field, line...)
			}
			continue
		}
		if askedFirst(field) {
			return true, nil
		}
		field = nil
		if !complete || len(line) == 0 {
			return false, nil // the end of the header, or of what we read
		}
		field = append(field, line...)
		if err == io.EOF {
			return askedFirst(field), nil
		}
	}
}

// askedFirst reports whether one unfolded header field is a request to
// go first.
func askedFirst(field []byte) bool {
	name, value, ok := bytes.Cut(field, []byte(":"))
	if !ok {
		return false
	}
	name = bytes.TrimRight(name, " \t")
	value = bytes.TrimSpace(value)
	switch {
	case bytes.EqualFold(name, []byte("Priority")):
		return bytes.EqualFold(value, []byte("urgent"))
	case bytes.EqualFold(name, []byte("X-Priority")):
		// "1", "1 (Highest)"; not "10" or "1.5".
		return len(value) > 0 && value[0] == '1' && (len(value) == 1 || value[1] == ' ' || value[1] == '\t' || value[1] == '(')
	}
	return false
}
