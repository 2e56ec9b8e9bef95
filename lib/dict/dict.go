// Package dict holds the zstd dictionaries omail knows, embedded in
// every binary: omail-pack compresses bundles with one (docs/BUNDLES.md,
// The dictionary), omail-unpack needs the one a bundle names, and
// `omail-pack -dict ID` writes one out for `zstd -dc -D FILE`.
//
// A dictionary is known by its id alone, the one in its own header and
// in every zstd frame compressed with it, so an id is never reused: a
// better dictionary is a new file, omail-<id>.dict, built by bench/dict,
// and the old ones stay here for as long as bundles packed with them
// may still be on their way.
package dict

import (
	"embed"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
)

// Current is the newest dictionary: the one `omail-pack -dict` lists
// first, for control/bundledict.
const Current uint32 = 1869414401

// magic starts every zstd dictionary (RFC 8878, 5: Dictionary Format).
const magic = 0xEC30A437

//go:embed omail-*.dict
var files embed.FS

// known maps ids to dictionaries, read from the embedded files once.
var known = load()

func load() map[uint32][]byte {
	m := map[uint32][]byte{}
	ents, err := fs.ReadDir(files, ".")
	if err != nil {
		panic(err)
	}
	for _, e := range ents {
		b, err := fs.ReadFile(files, e.Name())
		if err != nil {
			panic(err)
		}
		// A file whose name and header disagree is a packaging mistake:
		// the binary must not start with it.
		id, err := ID(b)
		want := strings.TrimSuffix(strings.TrimPrefix(e.Name(), "omail-"), ".dict")
		if err != nil || strconv.FormatUint(uint64(id), 10) != want {
			panic(fmt.Sprintf("dict: embedded %s: id %d, %v", e.Name(), id, err))
		}
		m[id] = b
	}
	if m[Current] == nil {
		panic(fmt.Sprintf("dict: the current dictionary %d is not embedded", Current))
	}
	return m
}

// ID reads a dictionary's id from its header.
func ID(b []byte) (uint32, error) {
	if len(b) < 8 || binary.LittleEndian.Uint32(b) != magic {
		return 0, errors.New("not a zstd dictionary")
	}
	id := binary.LittleEndian.Uint32(b[4:])
	if id == 0 {
		return 0, errors.New("a zstd dictionary without an id")
	}
	return id, nil
}

// Get returns the dictionary with the given id; ok is false for one
// this omail does not have. The bytes are shared: do not change them.
func Get(id uint32) (b []byte, ok bool) {
	b, ok = known[id]
	return b, ok
}

// IDs lists the ids of the dictionaries this omail has, in order.
func IDs() []uint32 {
	ids := make([]uint32, 0, len(known))
	for id := range known {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// All returns every dictionary this omail has, for a reader to know
// them all.
func All() [][]byte {
	var out [][]byte
	for _, id := range IDs() {
		out = append(out, known[id])
	}
	return out
}

// Parse reads a dictionary id as the control file bundledict and
// `omail-pack -dict` write it: decimal. "0" and "none" are no dictionary
// (id 0); an id this omail does not have is an error.
func Parse(s string) (uint32, error) {
	if s == "none" || s == "0" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("dictionary id %q is not a decimal number", s)
	}
	if _, ok := known[uint32(n)]; !ok {
		return 0, fmt.Errorf("no dictionary %d in this omail (it has %s)", n, list())
	}
	return uint32(n), nil
}

func list() string {
	var s []string
	for _, id := range IDs() {
		s = append(s, strconv.FormatUint(uint64(id), 10))
	}
	return strings.Join(s, ", ")
}
