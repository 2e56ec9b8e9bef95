// Package bundle writes and reads OCMP mail bundles: one compressed
// stream holding many messages, each with its full envelope, with a
// version, a unique id and checksums that catch a truncated or damaged
// file. docs/BUNDLES.md describes the bytes; this package is the only code
// that knows them.
//
// Inside the compression the stream is text framing around raw message
// bytes, so that `zstd -dc FILE` (or `zcat FILE`) shows what a bundle
// holds:
//
//	OMAIL-BUNDLE 1 <id> <endpoint> <created>\n
//	M <size> <nrcpt>\n F <sender>\n T <rcpt>\n ... <size bytes>\nS <crc32c>\n
//	... one such record per message ...
//	E <count> <sha256>\n
//
// Version 3 (compact.go) drops the S lines and the trailer's SHA-256,
// and ends the file with one frame instead of the seal and the
// signature frame. The reader streams: memory does not grow with the
// bundle or a message.
package bundle

import (
	"bufio"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"omail/lib/dict"
	"omail/lib/envelope"
)

// The format versions (docs/BUNDLES.md). Version 2 is version 1 that
// may hold international (SMTPUTF8) envelopes: omail-pack writes it only
// for a bundle holding a message whose sender or a recipient is not
// ASCII, so that an omail that predates SMTPUTF8 refuses that bundle
// (quarantined, kept) rather than relaying such mail without the
// parameter; every other bundle stays version 1, for every reader.
//
// VersionCompact (3) is the compact format (docs/BUNDLES.md, Version 3):
// nothing said twice, for the few hundred bytes that are most of a
// small bundle on a thin link. Its records carry no checksum line, its
// trailer no SHA-256, and one end frame (the signature, or for an
// unsigned bundle the SHA-256 of the file) replaces the seal and the
// signature frame: zstd's content checksum and the end frame over the
// raw file already find any damage. It is zstd only, may hold any
// envelope, and is written only when the receivers read it
// (control/bundleformat).
const (
	Version        = 1
	VersionUTF8    = 2
	VersionCompact = 3
)

// Magic starts the first line of every bundle, after decompression.
const Magic = "OMAIL-BUNDLE"

// Compression names, as in the control file bundlecompression. Zstd is
// the zstd program at level 12 (ZstdArgs), or where there is none the
// Go encoder at its strongest level; Best is the program at level 19:
// fewer bytes, a tenth of the speed.
const (
	Zstd = "zstd"
	Best = "best"
	Gzip = "gzip"
)

// Options says how a bundle is compressed.
type Options struct {
	Compression string // Zstd (also ""), Best or Gzip
	// Compact writes format version 3 (VersionCompact), whatever the
	// header's version says; zstd only.
	Compact bool
	// Dict is the zstd dictionary (lib/dict) to compress with, named in
	// the zstd frame so that a reader finds it; 0: none. Gzip has none.
	Dict uint32
	// SizeHint is about how many bytes the bundle's messages hold (0:
	// not known). The zstd program chooses its parameters by it, as it
	// cannot see the length of what it reads from a pipe: 2% fewer
	// bytes for one message of real mail, nothing lost for 8 MiB
	// (docs/BENCHMARKS.md, issue 16).
	SizeHint int64
}

// Window is the zstd window the writer uses: as large as a default
// bundle (bundlemax), so repeats anywhere in a bundle (the same headers in
// every message) are found. MaxWindow is what the reader accepts; it
// bounds the decoder's memory whatever a file claims.
const (
	Window    = 8 << 20
	MaxWindow = 32 << 20
)

// maxLine bounds a framing line: an address is at most
// envelope.MaxAddress bytes, so anything longer is damage.
const maxLine = envelope.MaxAddress + 64

// MaxRcpts bounds the recipients of one record, and MaxRcptBytes their
// total length, so that reading an envelope takes bounded memory.
const (
	MaxRcpts     = envelope.MaxRecipients
	MaxRcptBytes = 1 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// NewID returns a fresh bundle id: 128 random bits in hex.
func NewID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b[:])
}

// ValidID reports whether id can be a bundle id: 32 lower-case hex digits
// (or, for the original omail's files, "legacy-" and 64).
func ValidID(id string) bool {
	h := strings.TrimPrefix(id, "legacy-")
	if len(h) != 32 && len(h) != 64 || (len(h) == 64) != (len(id) != len(h)) {
		return false
	}
	return lowerHex(h)
}

// lowerHex reports whether s is all lower-case hex digits, as the format
// writes ids and checksums.
func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !('0' <= s[i] && s[i] <= '9' || 'a' <= s[i] && s[i] <= 'f') {
			return false
		}
	}
	return true
}

// ValidEndpoint reports why a name cannot be an OCMP endpoint (a directory
// under ocmpdir, and a word in the bundle header), or nil.
func ValidEndpoint(ep string) error {
	switch {
	case ep == "":
		return errors.New("empty endpoint")
	case len(ep) > 255:
		return errors.New("endpoint name too long")
	case ep == "." || ep == ".." || ep[0] == '.':
		return fmt.Errorf("endpoint %q starts with a dot", ep)
	}
	for i := 0; i < len(ep); i++ {
		if c := ep[i]; c <= ' ' || c == 0x7f || c == '/' {
			return fmt.Errorf("endpoint %q holds a slash, space or control character", ep)
		}
	}
	return nil
}

// Header is a bundle's first line.
type Header struct {
	Version  int
	ID       string
	Endpoint string
	Created  time.Time
	// Legacy is the original omail's format: a gzip'd mbox fragment. It
	// has no id of its own; the reader's ID is then "legacy-" and the
	// SHA-256 of the whole file, computed by Verify.
	Legacy bool
	// Dict is the id of the zstd dictionary the file names (lib/dict);
	// 0: none.
	Dict uint32
	// Signer is the public key whose signature the file carries, once
	// the reader checked it (Verify, CheckSeal, or the last Next); nil
	// for an unsigned file. Which keys to trust is the caller's business
	// (version 3 names its signer by key id: Signer is then the one of
	// the keys given to NewReader that signed).
	Signer ed25519.PublicKey
}

// Writer writes one bundle.
type Writer struct {
	raw   *rawWriter
	comp  string
	zw    io.WriteCloser
	bw    *bufio.Writer
	sum   hash.Hash // over everything before the trailer; nil in version 3
	out   io.Writer // bw, and sum
	count int
	cmd   *zstdCmd // the zstd program compressing; nil: the Go encoder, or gzip
	// fallback is why the Go encoder writes a zstd bundle: the program
	// could not be used (ErrNoZstd).
	fallback error
	key      ed25519.PrivateKey // nil: unsigned
	err      error
	// version is the format written: VersionCompact has no record
	// checksums, a short trailer and one end frame.
	version int
}

// NewWriter starts a bundle on w, compressed with comp (Zstd, Best or
// Gzip), without a dictionary. Nothing is complete until Close returns
// nil.
func NewWriter(w io.Writer, comp string, h Header) (*Writer, error) {
	return NewWriterOptions(w, Options{Compression: comp}, h)
}

// NewWriterOptions is NewWriter with a dictionary.
func NewWriterOptions(w io.Writer, o Options, h Header) (*Writer, error) {
	if !ValidID(h.ID) || strings.HasPrefix(h.ID, "legacy-") {
		return nil, fmt.Errorf("bundle: bad id %q", h.ID)
	}
	switch h.Version {
	case 0:
		h.Version = Version
	case Version, VersionUTF8:
	case VersionCompact:
		o.Compact = true
	default:
		return nil, fmt.Errorf("bundle: cannot write version %d", h.Version)
	}
	if o.Compact {
		if o.Compression == Gzip {
			return nil, errors.New("bundle: the compact format (version 3) is zstd only")
		}
		h.Version = VersionCompact
	}
	if err := ValidEndpoint(h.Endpoint); err != nil {
		return nil, err
	}
	var zw io.WriteCloser
	var cmd *zstdCmd
	var err, fallback error
	raw := &rawWriter{w: w, sum: sha256.New()}
	comp := Zstd
	switch o.Compression {
	case Best:
		if cmd, err = startZstd(raw, BestArgs, o); err == nil {
			zw = cmd
		} else if errors.Is(err, ErrNoZstd) {
			err = fmt.Errorf("bundlecompression best: %w", err)
		}
	case "", Zstd:
		// The zstd program where there is one (fewer bytes, less
		// CPU); the same format from the Go encoder where there is not.
		if cmd, err = startZstd(raw, ZstdArgs, o); err == nil {
			zw = cmd
		} else if errors.Is(err, ErrNoZstd) {
			fallback = err
			zw, err = goZstd(raw, o.Dict)
		}
	case Gzip:
		comp = Gzip
		zw, err = gzip.NewWriterLevel(raw, gzip.DefaultCompression)
	default:
		return nil, fmt.Errorf("bundle: unknown compression %q (zstd, best or gzip)", o.Compression)
	}
	if err != nil {
		return nil, err
	}
	bw := &Writer{raw: raw, comp: comp, zw: zw, bw: bufio.NewWriterSize(zw, 64<<10), cmd: cmd, fallback: fallback, version: h.Version}
	bw.out = bw.bw
	if h.Version != VersionCompact {
		bw.sum = sha256.New()
		bw.out = io.MultiWriter(bw.bw, bw.sum)
	}
	fmt.Fprintf(bw.out, "%s %d %s %s %d\n", Magic, h.Version, h.ID, h.Endpoint, h.Created.Unix())
	return bw, nil
}

// goZstd is the Go encoder at its strongest level, with the window and
// checksum the zstd program is run with.
func goZstd(raw io.Writer, id uint32) (io.WriteCloser, error) {
	opts := []zstd.EOption{zstd.WithEncoderLevel(zstd.SpeedBestCompression), zstd.WithWindowSize(Window),
		zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(true)}
	if id != 0 {
		d, ok := dict.Get(id)
		if !ok {
			return nil, fmt.Errorf("bundle: no dictionary %d in this omail", id)
		}
		opts = append(opts, zstd.WithEncoderDict(d))
	}
	return zstd.NewWriter(raw, opts...)
}

// Encoder says what compresses the bundle, for the log: "the zstd
// program", "the Go zstd encoder" (and why not the program) or "gzip".
func (w *Writer) Encoder() string {
	switch {
	case w.cmd != nil:
		return "the zstd program"
	case w.comp == Gzip:
		return "gzip"
	case w.fallback != nil:
		return "the Go zstd encoder (" + w.fallback.Error() + ")"
	}
	return "the Go zstd encoder"
}

// Add writes one message of exactly size bytes read from body, with its
// envelope. The message is stored once whatever the number of recipients.
func (w *Writer) Add(sender string, rcpts []string, size int64, body io.Reader) error {
	if w.err != nil {
		return w.err
	}
	total := 0
	for _, r := range rcpts {
		total += len(r)
	}
	if len(rcpts) == 0 || len(rcpts) > MaxRcpts || total > MaxRcptBytes {
		return fmt.Errorf("bundle: %d recipients, %d bytes: more than a reader takes", len(rcpts), total)
	}
	for _, a := range append([]string{sender}, rcpts...) {
		if err := envelope.CheckAddress(a); err != nil {
			return err
		}
	}
	if size < 0 {
		return errors.New("bundle: negative size")
	}
	var crc hash.Hash32
	out := w.out
	if w.version != VersionCompact {
		crc = crc32.New(castagnoli)
		out = io.MultiWriter(w.out, crc)
	}
	fmt.Fprintf(out, "M %d %d\nF %s\n", size, len(rcpts), sender)
	for _, r := range rcpts {
		fmt.Fprintf(out, "T %s\n", r)
	}
	n, err := io.Copy(out, io.LimitReader(body, size))
	if err == nil && n != size {
		err = fmt.Errorf("bundle: message is %d bytes, not the %d announced", n, size)
	}
	if err != nil {
		w.err = err
		return err
	}
	if crc != nil {
		_, err = fmt.Fprintf(w.out, "\nS %08x\n", crc.Sum32())
	} else {
		_, err = io.WriteString(w.out, "\n")
	}
	w.count++
	w.err = err
	return err
}

// Sign makes Close sign the bundle with key.
func (w *Writer) Sign(key ed25519.PrivateKey) { w.key = key }

// Count is the number of messages added.
func (w *Writer) Count() int { return w.count }

// Close writes the trailer and ends the compressed stream. It does not
// close or sync the underlying writer.
func (w *Writer) Close() error {
	if w.err != nil {
		w.abort()
		return w.err
	}
	if w.sum != nil {
		fmt.Fprintf(w.bw, "E %d %x\n", w.count, w.sum.Sum(nil))
	} else {
		fmt.Fprintf(w.bw, "E %d\n", w.count)
	}
	if err := w.bw.Flush(); err != nil {
		// The zstd program that stopped reading says why.
		if w.cmd != nil {
			if cerr := w.cmd.Close(); cerr != nil {
				return cerr
			}
		}
		w.abort()
		return err
	}
	if err := w.zw.Close(); err != nil {
		return err
	}
	if w.version == VersionCompact {
		_, err := w.raw.w.Write(endFrame(w.key, w.raw.sum.Sum(nil)))
		return err
	}
	if w.key != nil {
		sig := ed25519.Sign(w.key, signedDigest(w.raw.sum.Sum(nil)))
		if _, err := w.raw.Write(sigFrame(w.comp, w.key.Public().(ed25519.PublicKey), sig)); err != nil {
			return err
		}
	}
	_, err := w.raw.w.Write(seal(w.comp, w.raw.sum.Sum(nil)))
	return err
}

// Abort gives up a bundle that will not be closed: it stops the zstd
// program, if one compresses. The file written so far is garbage.
func (w *Writer) Abort() { w.abort() }

func (w *Writer) abort() {
	if w.cmd != nil {
		w.cmd.abort()
	}
}

// rawWriter hashes the compressed bytes, for the seal.
type rawWriter struct {
	w   io.Writer
	sum hash.Hash
}

func (r *rawWriter) Write(b []byte) (int, error) {
	n, err := r.w.Write(b)
	r.sum.Write(b[:n])
	return n, err
}

// The seal ends every bundle: the SHA-256 of every compressed byte before
// it, in a frame the decompressors skip (zstd: a skippable frame; gzip:
// an empty member whose header comment carries it). The trailer's checksum
// covers what the stream says; the seal also covers what it is wrapped in.
const (
	sealTag     = "OMAILSL1"
	gzipSealTag = "OMAIL-SEAL "
	zstdSealLen = 8 + len(sealTag) + sha256.Size
	gzipSealLen = 10 + len(gzipSealTag) + 2*sha256.Size + 1 + 2 + 8
	maxSealLen  = gzipSealLen
)

func seal(comp string, sum []byte) []byte {
	if comp == Gzip {
		b := []byte{0x1f, 0x8b, 8, 0x10, 0, 0, 0, 0, 0, 0xff}
		b = append(b, gzipSealTag+hex.EncodeToString(sum)...)
		b = append(b, 0, 3, 0) // end of comment, an empty final deflate block
		return append(b, 0, 0, 0, 0, 0, 0, 0, 0)
	}
	b := []byte{0x50, 0x2a, 0x4d, 0x18, byte(len(sealTag) + sha256.Size), 0, 0, 0}
	b = append(b, sealTag...)
	return append(b, sum...)
}
