package milter

import (
	"bytes"
	"io"
)

// crlfToLF writes what the MTA sends (header lines and body with CRLF
// line ends, in chunks that may split a CRLF) with LF line ends, the
// queue's form, as it passes: nothing is held but one CR. A CR not
// followed by LF is passed on as it is.
type crlfToLF struct {
	w  io.Writer
	cr bool  // the last byte written to us was a CR, not yet passed on
	n  int64 // bytes passed on
}

func (c *crlfToLF) Write(p []byte) (int, error) {
	total := len(p)
	if c.cr && len(p) > 0 {
		c.cr = false
		if p[0] != '\n' {
			if err := c.out([]byte{'\r'}); err != nil {
				return 0, err
			}
		}
	}
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\r')
		if i < 0 {
			return total, c.out(p)
		}
		if err := c.out(p[:i]); err != nil {
			return 0, err
		}
		switch {
		case i+1 == len(p):
			c.cr = true
			return total, nil
		case p[i+1] == '\n':
			p = p[i+1:] // the LF goes out with the next piece
		default:
			if err := c.out([]byte{'\r'}); err != nil {
				return 0, err
			}
			p = p[i+1:]
		}
	}
	return total, nil
}

func (c *crlfToLF) out(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	_, err := c.w.Write(p)
	c.n += int64(len(p))
	return err
}

// Close passes on a CR left at the very end.
func (c *crlfToLF) Close() error {
	if c.cr {
		c.cr = false
		return c.out([]byte{'\r'})
	}
	return nil
}
