package remote

// headerScan watches the message bytes as they go out and notes whether
// the header (everything before the first empty line) holds a byte over
// 0x7f: UTF-8 header fields (RFC 6532), which only a next hop that offers
// SMTPUTF8 may be sent. The queue's U record covers the envelope; the
// header is judged here, on the bytes actually sent (after masquerade).
type headerScan struct {
	body     bool // the empty line has been seen
	bol      bool // at the beginning of a line (after LF)
	started  bool
	eightBit bool // 8-bit byte in the header
}

func (h *headerScan) Write(b []byte) (int, error) {
	if !h.started {
		h.started, h.bol = true, true
	}
	for _, c := range b {
		if h.body {
			break
		}
		switch {
		case c == '\n':
			if h.bol {
				h.body = true
			}
			h.bol = true
		case c == '\r':
			// CRLF or LF ends a line alike; a CR alone changes nothing.
		default:
			if c >= 0x80 {
				h.eightBit = true
			}
			h.bol = false
		}
	}
	return len(b), nil
}
