package bundle

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"omail/lib/dict"
	"omail/lib/envelope"
	"omail/lib/mbox"
)

// ErrDamaged is a file that is not a bundle we can read: truncated,
// altered, of another version, or not a bundle at all. Any error the
// reader returns that is not ErrDamaged came from reading the file (an
// I/O error: try again later).
var ErrDamaged = errors.New("damaged or unknown bundle")

// DamagedError says what is wrong with a file.
type DamagedError struct{ Why string }

func (e *DamagedError) Error() string   { return "damaged or unknown bundle: " + e.Why }
func (e *DamagedError) Is(t error) bool { return t == ErrDamaged }

func damaged(format string, args ...any) error {
	return &DamagedError{fmt.Sprintf(format, args...)}
}

// ErrUnknownDict is a bundle compressed with a zstd dictionary this
// omail does not have: not damage (a newer omail reads it), and nothing
// in it can be read here. The caller keeps the file for later.
var ErrUnknownDict = errors.New("bundle compressed with an unknown dictionary")

// DictError names the dictionary a bundle needs, and who signed the
// bundle (nil: nobody), as its seal and signature say: the reader checks
// them before it says the dictionary is missing.
type DictError struct {
	ID     uint32
	Signer ed25519.PublicKey
}

func (e *DictError) Error() string {
	return fmt.Sprintf("compressed with zstd dictionary %d, which this omail does not have (a newer omail has it: upgrade this one; the file is kept)", e.ID)
}
func (e *DictError) Is(t error) bool { return t == ErrUnknownDict }

// frameDict returns the Dictionary_ID of the zstd frame header at the
// start of b (RFC 8878, 3.1.1.1), or 0 when it names none or b is too
// short to say: the decompressor then finds what is wrong. Every frame
// of a bundle uses the dictionary its first frame names.
func frameDict(b []byte) uint32 {
	if len(b) < 5 {
		return 0
	}
	fhd := b[4]
	at := 5
	if fhd&0x20 == 0 { // no Single_Segment_flag: a Window_Descriptor byte
		at++
	}
	n := [4]int{0, 1, 2, 4}[fhd&3]
	if n == 0 || len(b) < at+n {
		return 0
	}
	var id uint32
	for i := n - 1; i >= 0; i-- {
		id = id<<8 | uint32(b[at+i])
	}
	return id
}

// Message is one message of a bundle. Body reads exactly Size bytes
// (Size is -1 in a legacy mbox, where it is not known ahead) and, at its
// end, checks the message's checksum: a Body that returns io.EOF was
// read whole and intact. Version 3 has no checksum per message: there
// a Body's io.EOF says only that it was read whole, and the bundle is
// intact once Next returns io.EOF, or once CheckSeal found its end
// frame good (then the stream can only differ from what was signed if
// the file changes while it is read, which the end, checked again,
// finds).
type Message struct {
	Sender string
	Rcpts  []string
	Size   int64
	Body   io.Reader
}

// Reader reads a bundle as a stream.
type Reader struct {
	Header Header
	src    *srcReader
	in     *bufio.Reader // the raw file
	comp   string
	dict   uint32 // the dictionary the first zstd frame names; 0: none
	dec    io.ReadCloser
	br     *bufio.Reader
	sum    hash.Hash // of the stream; nil once CheckSeal made it redundant
	count  int
	body   io.Reader // the current message's body, until drained
	mbox   *mbox.Reader
	signed bool                // Header.Signer is known (CheckSeal, ExpectSigner): the end must agree
	keys   []ed25519.PublicKey // who may have signed a version 3 bundle
	limit  *limiter
	done   bool
	err    error
}

// srcReader remembers a read error of the file itself, to tell it from
// damage the decompressor finds.
type srcReader struct {
	r    io.Reader
	err  error
	sum  hash.Hash // of the raw file but its last maxTail bytes
	tail []byte    // the last bytes read, not yet in sum
}

func (s *srcReader) Read(b []byte) (int, error) {
	n, err := s.r.Read(b)
	s.tail = append(s.tail, b[:n]...)
	if k := len(s.tail) - maxTail; k > 0 {
		s.sum.Write(s.tail[:k])
		s.tail = append(s.tail[:0], s.tail[k:]...)
	}
	if err != nil && err != io.EOF && s.err == nil {
		s.err = err
	}
	return n, err
}

// classify turns an error met while reading into an I/O error (the
// file's own) or damage.
func (r *Reader) classify(err error, what string) error {
	if r.src.err != nil {
		return r.src.err
	}
	var d *DamagedError
	if errors.As(err, &d) {
		return err
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return damaged("%s: %v", what, err)
}

// NewReader opens a bundle: it detects the compression, reads the header
// line and checks the version. Nothing is delivered on the strength of
// it: a bundle is good only once every message and the trailer have been
// read (Verify).
//
// keys are the public keys that may have signed the bundle (for
// omail-unpack, those ocmppeers lists for its endpoint): a version 3
// bundle names its signer by a short id only (compact.go), and one
// signed by a key not among them cannot be checked, so reading it ends
// in a *SignerError (ErrUnknownSigner), not damage. Versions 1 and 2
// carry the whole key and ignore keys.
func NewReader(f io.Reader, keys ...ed25519.PublicKey) (*Reader, error) {
	r := &Reader{src: &srcReader{r: f, sum: sha256.New()}, sum: sha256.New(), keys: keys}
	in := bufio.NewReaderSize(r.src, 64<<10)
	r.in = in
	magic, err := in.Peek(4)
	if err == nil {
		r.comp = Gzip
		if magic[0] == 0x28 {
			r.comp = Zstd
		}
	}
	if err != nil {
		return nil, r.classify(err, "reading the magic number")
	}
	switch {
	case bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		// A dictionary this omail lacks is found before anything is
		// decompressed, and said as such: without it the decompressor
		// would only report an error, which is damage.
		head, _ := in.Peek(4 + 1 + 1 + 4)
		id := frameDict(head)
		opts := []zstd.DOption{zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(false),
			zstd.WithDecoderMaxWindow(MaxWindow), zstd.WithDecoderMaxMemory(1 << 40)}
		if id != 0 {
			b, ok := dict.Get(id)
			if !ok {
				return nil, r.unknownDict(id)
			}
			opts = append(opts, zstd.WithDecoderDicts(b))
			r.dict = id
		}
		d, err := zstd.NewReader(in, opts...)
		if err != nil {
			return nil, err
		}
		r.dec = d.IOReadCloser()
	case magic[0] == 0x1f && magic[1] == 0x8b:
		g, err := gzip.NewReader(in)
		if err != nil {
			return nil, r.classify(err, "gzip header")
		}
		r.dec = g
	default:
		return nil, damaged("neither zstd nor gzip")
	}
	r.limit = &limiter{r: r.dec}
	r.br = bufio.NewReaderSize(r.limit, 64<<10)
	first, err := r.br.Peek(len(Magic) + 1)
	if err != nil {
		r.Close()
		return nil, r.classify(err, "reading the header")
	}
	if string(first[:5]) == "From " {
		r.Header.Legacy = true
		r.mbox = mbox.NewReader(r.br)
		return r, nil
	}
	line, err := r.hline()
	if err == nil {
		err = r.parseHeader(string(line[:len(line)-1]))
	}
	if err != nil {
		r.Close()
		return nil, err
	}
	r.Header.Dict = r.dict
	return r, nil
}

// unknownDict is NewReader's answer to a file naming a dictionary this
// omail lacks: a DictError, to keep the file for a newer omail, but only
// once the seal (and the signature, if any) over the raw file shows the
// file is whole as written; a changed byte can name a dictionary too,
// and damage must be quarantined, not kept for ever. It reads the rest
// of the file, as a stream.
func (r *Reader) unknownDict(id uint32) error {
	if _, err := io.Copy(io.Discard, r.in); err != nil {
		return r.classify(err, "reading the file")
	}
	signer, _, err := checkEnd(r.comp, r.src.sum, r.src.tail, r.keys)
	if err != nil {
		return err
	}
	return &DictError{ID: id, Signer: signer}
}

// ExpectSigner sets Header.Signer ahead of the end of the file, as an
// earlier reading of the same file found it: a file whose end then
// disagrees is damaged.
func (r *Reader) ExpectSigner(k ed25519.PublicKey) { r.Header.Signer, r.signed = k, true }

// SetLimit bounds the decompressed stream: past max bytes (within the
// reader's 64 KiB of read-ahead) reading fails with ErrDamaged, whatever
// the file claims, so that a few kilobytes that decompress to gigabytes
// (a decompression bomb) cost no more than max bytes of reading. 0: no
// limit.
func (r *Reader) SetLimit(max int64) { r.limit.max = max }

// StreamBound is the most a bundle's stream may decompress to at a
// receiver with the control files bundlemax and databytes: a packer puts
// at most bundlemax bytes of messages in a bundle, or one message
// (at most databytes) alone; the framing around them (envelopes, record
// lines) gets as much again as the messages, and one envelope's worth.
// Past it, the bundle is a decompression bomb, whatever it claims.
func StreamBound(bundlemax, databytes int64) int64 {
	m := max(bundlemax, 0) + max(databytes, 0)
	return 2*m + MaxRcptBytes + 4*maxLine
}

// limiter counts what the decompressor produced.
type limiter struct {
	r      io.Reader
	n, max int64
}

func (l *limiter) Read(p []byte) (int, error) {
	if l.max > 0 && l.n > l.max {
		return 0, damaged("it decompresses to more than %d bytes (a decompression bomb?)", l.max)
	}
	k, err := l.r.Read(p)
	l.n += int64(k)
	return k, err
}

// Close releases the decompressor.
func (r *Reader) Close() error {
	if r.dec != nil {
		r.dec.Close()
	}
	return nil
}

// line reads one framing line and returns it with its newline. The
// slice is the reader's buffer: good until the next read. (Framing is
// parsed in place: a bundle has a few lines per message, and a string
// for each was most of what unpacking allocated.)
func (r *Reader) line() ([]byte, error) {
	b, err := r.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull || err == nil && len(b) > maxLine {
		return nil, damaged("framing line too long")
	}
	if err != nil {
		return nil, r.classify(err, "reading a framing line")
	}
	return b, nil
}

// hline is line, adding the line to the stream checksum.
func (r *Reader) hline() ([]byte, error) {
	l, err := r.line()
	if err == nil {
		r.addSum(l)
	}
	return l, err
}

// addSum adds stream bytes to the stream checksum, if it is kept.
func (r *Reader) addSum(b []byte) {
	if r.sum != nil {
		r.sum.Write(b)
	}
}

// text is a framing line without its newline, as a string for messages.
func text(l []byte) string {
	return trim(string(bytes.TrimSuffix(l, newline)))
}

var newline = []byte{'\n'}

// decimal parses a number of the framing: decimal digits only, at most
// 18 of them (no sign, no overflow).
func decimal(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func (r *Reader) parseHeader(line string) error {
	f := strings.Split(line, " ")
	if f[0] != Magic {
		return damaged("no %s header", Magic)
	}
	if len(f) < 2 {
		return damaged("header without a version")
	}
	v, err := strconv.Atoi(f[1])
	if err != nil || v != Version && v != VersionUTF8 && v != VersionCompact {
		return damaged("version %q, this program reads versions %d, %d and %d", f[1], Version, VersionUTF8, VersionCompact)
	}
	if v == VersionCompact && r.comp != Zstd {
		return damaged("a version %d header in a gzip file (version %d is zstd only)", v, v)
	}
	if len(f) != 5 {
		return damaged("header has %d fields, want 5", len(f))
	}
	if !ValidID(f[2]) || strings.HasPrefix(f[2], "legacy-") {
		return damaged("bad bundle id %q", f[2])
	}
	if err := ValidEndpoint(f[3]); err != nil {
		return damaged("%v", err)
	}
	t, err := strconv.ParseInt(f[4], 10, 64)
	if err != nil {
		return damaged("bad creation time %q", f[4])
	}
	r.Header = Header{Version: v, ID: f[2], Endpoint: f[3], Created: time.Unix(t, 0)}
	if v == VersionCompact {
		r.sum = nil // no stream checksum: zstd's content checksum does it
	}
	return nil
}

// Next returns the next message, first skipping what is left of the
// previous one's body. At the end of an intact bundle it returns io.EOF;
// any other error is either ErrDamaged or an I/O error, and Next goes on
// returning it.
func (r *Reader) Next() (*Message, error) {
	if r.err != nil {
		return nil, r.err
	}
	m, err := r.next()
	if err != nil {
		r.err = err
	}
	return m, err
}

func (r *Reader) next() (*Message, error) {
	if r.body != nil {
		if _, err := io.Copy(io.Discard, r.body); err != nil {
			return nil, err
		}
		r.body = nil
	}
	if r.mbox != nil {
		return r.nextMbox()
	}
	if r.done {
		return nil, io.EOF
	}
	l, err := r.line()
	if err != nil {
		return nil, err
	}
	if bytes.HasPrefix(l, []byte("E ")) {
		return nil, r.trailer(string(l[:len(l)-1]))
	}
	r.addSum(l)
	// "M <size> <nrcpt>"
	rest, isM := bytes.CutPrefix(l[:len(l)-1], []byte("M "))
	sz, nr, two := bytes.Cut(rest, []byte(" "))
	if !isM || !two || bytes.IndexByte(nr, ' ') >= 0 {
		return nil, damaged("record %d: %q where a message or the trailer was expected", r.count+1, text(l))
	}
	size, ok1 := decimal(sz)
	n, ok2 := decimal(nr)
	if !ok1 || !ok2 || n < 1 || n > MaxRcpts {
		return nil, damaged("record %d: bad message line %q", r.count+1, text(l))
	}
	crc := crc32.Update(0, castagnoli, l)
	m := &Message{Size: size}
	if m.Sender, err = r.addr("F ", &crc); err != nil {
		return nil, err
	}
	rcptBytes := 0
	for i := int64(0); i < n; i++ {
		a, err := r.addr("T ", &crc)
		if err != nil {
			return nil, err
		}
		if a == "" {
			return nil, damaged("record %d: empty recipient", r.count+1)
		}
		// A hostile record could claim 100,000 long recipients: memory
		// for the envelope is bounded, not only the count.
		if rcptBytes += len(a); rcptBytes > MaxRcptBytes {
			return nil, damaged("record %d: recipients over %d bytes", r.count+1, MaxRcptBytes)
		}
		m.Rcpts = append(m.Rcpts, a)
	}
	r.count++
	b := &bodyReader{r: r, left: size, crc: crc, index: r.count}
	r.body, m.Body = b, b
	return m, nil
}

// addr reads an envelope line, "F <sender>" or "T <recipient>" (tag),
// adds it to the record's CRC, and returns the address.
func (r *Reader) addr(tag string, crc *uint32) (string, error) {
	l, err := r.hline()
	if err != nil {
		return "", err
	}
	if !bytes.HasPrefix(l, []byte(tag)) {
		return "", damaged("record %d: %q where %q was expected", r.count+1, text(l), tag)
	}
	*crc = crc32.Update(*crc, castagnoli, l)
	a := string(l[len(tag) : len(l)-1])
	if err := envelope.CheckAddress(a); err != nil {
		return "", damaged("record %d: %v", r.count+1, err)
	}
	return a, nil
}

func (r *Reader) trailer(line string) error {
	f := strings.Split(line, " ")
	if r.Header.Version == VersionCompact {
		f = append(f, "") // "E <count>": no checksum
	}
	if len(f) != 3 {
		return damaged("bad trailer %q", trim(line))
	}
	n, err := strconv.Atoi(f[1])
	if err != nil || n != r.count {
		return damaged("trailer counts %q messages, the bundle holds %d", f[1], r.count)
	}
	// The trailer line itself is not part of the checksum it carries.
	if r.Header.Version == VersionCompact {
		// Version 3's trailer has the count alone.
	} else if len(f[2]) != 2*sha256.Size || !lowerHex(f[2]) || r.sum != nil && f[2] != hex.EncodeToString(r.sum.Sum(nil)) {
		return damaged("stream checksum mismatch")
	}
	// Nothing may follow the trailer, and the compressed stream must end
	// properly (its own checksum checked).
	var one [1]byte
	k, err := io.ReadFull(r.br, one[:])
	if k > 0 {
		return damaged("data after the trailer")
	}
	if err != io.EOF {
		return r.classify(err, "end of stream")
	}
	if _, err := io.Copy(io.Discard, r.in); err != nil {
		return r.classify(err, "end of file")
	}
	if err := r.checkSeal(); err != nil {
		return err
	}
	r.done = true
	return io.EOF
}

// checkSeal compares the seal (and the signature, if any) at the end of
// the file with the file. After CheckSeal, the signer must be the one it
// found: the same file, read through.
func (r *Reader) checkSeal() error {
	signer, err := r.checkEnd(r.src.sum, r.src.tail)
	if err != nil {
		return err
	}
	if r.signed && !signer.Equal(r.Header.Signer) {
		return damaged("the signature changed while the file was read")
	}
	r.Header.Signer = signer
	return nil
}

// checkEnd is checkEnd for this file, whose header said which of the
// two ends it must have: a file whose end is the other version's is
// damaged (or made up), whatever it says.
func (r *Reader) checkEnd(sum hash.Hash, tail []byte) (ed25519.PublicKey, error) {
	signer, compact, err := checkEnd(r.comp, sum, tail, r.keys)
	if err != nil {
		return nil, err
	}
	if compact != (r.Header.Version == VersionCompact) {
		return nil, damaged("a version %d header, and the end of another version", r.Header.Version)
	}
	return signer, nil
}

// CheckSeal reads the raw file, size bytes through ra (apart from the
// stream r reads, which it leaves where it is), and compares the seal at
// its end with the rest: a file cut short or with a byte changed
// anywhere is found without decompressing anything. It returns nil,
// ErrDamaged or an I/O error. A legacy file has no seal: CheckSeal sets
// its id (which needs the whole file) instead.
//
// It does not replace reading the stream to its end: only that checks
// what the stream says (a packer's bug, or a file written to look
// sealed), and a reader must still undo what it did with a bundle whose
// stream turns out damaged. What CheckSeal spares is that undoing for
// the damage met in practice, files cut or altered on their way.
func (r *Reader) CheckSeal(ra io.ReaderAt, size int64) error {
	h := sha256.New()
	buf := make([]byte, 128<<10)
	if r.Header.Legacy {
		if _, err := io.CopyBuffer(h, io.NewSectionReader(ra, 0, size), buf); err != nil {
			return err
		}
		r.Header.ID = "legacy-" + hex.EncodeToString(h.Sum(nil))
		return nil
	}
	n := min(size, int64(maxTail))
	if _, err := io.CopyBuffer(h, io.NewSectionReader(ra, 0, size-n), buf); err != nil {
		return err
	}
	tail := buf[:n]
	if k, err := ra.ReadAt(tail, size-n); k < len(tail) {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF // shorter than its size a moment ago
		}
		return err
	}
	signer, err := r.checkEnd(h, tail)
	if err != nil {
		return err
	}
	r.Header.Signer, r.signed = signer, true
	// The stream's own SHA-256 can no longer find anything: the seal is
	// checked again at the end over the very bytes decompressed, and the
	// compression's checksum (zstd's content checksum, gzip's CRC)
	// matches the decompressed stream against the packer's input. It was
	// a tenth of an unpack's CPU; the trailer's count is still checked.
	r.sum = nil
	return nil
}

// trim shortens a line for an error message.
func trim(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

// bodyReader reads one message body and checks its checksum at its end.
type bodyReader struct {
	r     *Reader
	left  int64
	crc   uint32 // CRC-32C of the record so far
	index int
	end   bool
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.end {
		return 0, io.EOF
	}
	if b.left == 0 {
		return 0, b.finish()
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.br.Read(p)
	b.left -= int64(n)
	b.crc = crc32.Update(b.crc, castagnoli, p[:n])
	b.r.addSum(p[:n])
	if err != nil {
		if n > 0 {
			return n, nil
		}
		err = b.r.classify(err, fmt.Sprintf("message %d", b.index))
		b.r.err = err
		return 0, err
	}
	return n, nil
}

// finish reads the separator and the message checksum line.
func (b *bodyReader) finish() error {
	nl, err := b.r.br.ReadByte()
	if err != nil {
		err = b.r.classify(err, fmt.Sprintf("message %d", b.index))
	} else if nl != '\n' {
		err = damaged("message %d: no newline after its body", b.index)
	}
	if err == nil && b.r.Header.Version != VersionCompact {
		b.r.addSum(newline)
		var l []byte
		l, err = b.r.hline()
		if want := crcLine(b.crc); err == nil && !bytes.Equal(l, want[:]) {
			err = damaged("message %d: checksum mismatch", b.index)
		}
	}
	if err != nil {
		b.r.err = err
		return err
	}
	b.end = true
	return io.EOF
}

// crcLine is the checksum line of a record whose CRC is crc, with its
// newline: "S " and 8 lower-case hex digits.
func crcLine(crc uint32) [11]byte {
	const hexDigits = "0123456789abcdef"
	l := [11]byte{'S', ' ', 10: '\n'}
	for i := 9; i >= 2; i-- {
		l[i] = hexDigits[crc&0xf]
		crc >>= 4
	}
	return l
}

// nextMbox returns the next message of a legacy bundle.
func (r *Reader) nextMbox() (*Message, error) {
	sender, body, err := r.mbox.Next()
	if err == io.EOF {
		// The gzip stream must end cleanly, its CRC checked, and the
		// file with it.
		if _, err := io.Copy(io.Discard, r.br); err != nil {
			return nil, r.classify(err, "end of gzip stream")
		}
		if _, err := io.Copy(io.Discard, r.in); err != nil {
			return nil, r.classify(err, "end of file")
		}
		r.src.sum.Write(r.src.tail)
		r.Header.ID = "legacy-" + hex.EncodeToString(r.src.sum.Sum(nil))
		return nil, io.EOF
	}
	if err != nil {
		if errors.Is(err, mbox.ErrNotMbox) && r.src.err == nil {
			// A From_ line too long to be one: damage, in mbox's words.
			return nil, damaged("%v", err)
		}
		return nil, r.classify(err, "legacy mbox")
	}
	r.count++
	b := &legacyBody{r: r, body: body}
	r.body = b
	return &Message{Sender: sender, Size: -1, Body: b}, nil
}

// legacyBody passes decompression errors through classify.
type legacyBody struct {
	r    *Reader
	body io.Reader
}

func (b *legacyBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	if err != nil && err != io.EOF {
		err = b.r.classify(err, "legacy mbox")
		b.r.err = err
	}
	return n, err
}

// Count is the number of messages read so far.
func (r *Reader) Count() int { return r.count }

// Verify reads a whole bundle, every body included, and reports whether
// it is intact: nil, ErrDamaged, or an I/O error. It returns the header
// (for a legacy file, with its id, which needs the whole file; for a
// signed one, with its Signer) and the number of messages. keys are as
// NewReader's.
func Verify(f io.Reader, keys ...ed25519.PublicKey) (Header, int, error) {
	return VerifyLimit(f, 0, keys...)
}

// VerifyLimit is Verify with the decompressed stream bounded as SetLimit
// says.
func VerifyLimit(f io.Reader, max int64, keys ...ed25519.PublicKey) (Header, int, error) {
	r, err := NewReader(f, keys...)
	if err != nil {
		return Header{}, 0, err
	}
	defer r.Close()
	r.SetLimit(max)
	for {
		_, err := r.Next()
		if err == io.EOF {
			return r.Header, r.count, nil
		}
		if err != nil {
			return r.Header, r.count, err
		}
	}
}
