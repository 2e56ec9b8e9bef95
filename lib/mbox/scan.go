package mbox

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"syscall"
)

// Signature identifies the first n bytes of the open mailbox f: its
// inode, n, and a SHA-256 of the (up to) 4 KiB before n. A program that
// wrote down a mailbox's length before appending compares signatures
// after a crash to learn whether a mail reader rewrote the mailbox
// meanwhile, which makes the length it wrote down mean nothing.
func Signature(f *os.File, n int64) (string, error) {
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	var ino uint64
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		ino = st.Ino
	}
	from := max(0, n-4096)
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, from, n-from)); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d:%d:%x", ino, n, h.Sum(nil)[:16]), nil
}

// scanBuf is how much of a line Lines hands over.
const scanBuf = 64 << 10

// Lines calls fn for each line of the bytes from..to of f, in order,
// with its newline (the last line may lack one) and whether it begins a
// message: a From_ line, "From " and more at a line start, which mboxrd
// quoting leaves nowhere else. A line longer than 64 KiB is handed over
// as its first 64 KiB; the rest of it is skipped.
func Lines(f io.ReaderAt, from, to int64, fn func(line []byte, begins bool)) error {
	br := bufio.NewReaderSize(io.NewSectionReader(f, from, to-from), scanBuf)
	atStart := true
	for {
		l, err := br.ReadSlice('\n')
		if atStart && len(l) > 0 {
			fn(l, len(l) > len(fromLine) && string(l[:len(fromLine)]) == fromLine)
		}
		atStart = err == nil
		if err == io.EOF {
			return nil
		}
		if err != nil && err != bufio.ErrBufferFull {
			return err
		}
	}
}
