package dict

import (
	"bytes"
	"testing"
)

func TestEmbedded(t *testing.T) {
	b, ok := Get(Current)
	if !ok {
		t.Fatal("the current dictionary is missing")
	}
	if id, err := ID(b); err != nil || id != Current {
		t.Fatalf("current dictionary: id %d, %v", id, err)
	}
	// An id is chosen where RFC 8878 leaves it to us: 32768 to 2^31-1.
	for _, id := range IDs() {
		if id < 32768 || id >= 1<<31 {
			t.Errorf("dictionary id %d is in a reserved range", id)
		}
	}
	all := All()
	for i, id := range IDs() {
		if d, _ := Get(id); !bytes.Equal(all[i], d) {
			t.Errorf("All()[%d] is not dictionary %d", i, id)
		}
	}
	if _, ok := Get(Current + 1); ok {
		t.Error("a dictionary that is not there")
	}
}

func TestParse(t *testing.T) {
	for in, want := range map[string]uint32{"0": 0, "none": 0, "1869414401": Current} {
		if got, err := Parse(in); err != nil || got != want {
			t.Errorf("Parse(%q) = %d, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "-1", "x", "12345", "4294967296", " 1869414401"} {
		if _, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) accepted", in)
		}
	}
}

func TestID(t *testing.T) {
	for _, b := range [][]byte{nil, []byte("\x37\xa4\x30\xec"), []byte("\x37\xa4\x30\xec\x00\x00\x00\x00"), []byte("\x28\xb5\x2f\xfd\x01\x00\x00\x00")} {
		if _, err := ID(b); err == nil {
			t.Errorf("ID(% x) accepted", b)
		}
	}
	if id, err := ID([]byte("\x37\xa4\x30\xec\x01\x00\x6d\x6f")); err != nil || id != 0x6f6d0001 {
		t.Errorf("ID: %x, %v", id, err)
	}
}

// FuzzParse: bundledict's parser takes "none", "0" and the decimal id
// of a dictionary omail has, and nothing else.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"none", "0", "1869414401", "12345", "", "+1869414401", "01869414401", "4294967297"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := Parse(s)
		if err != nil {
			return
		}
		if id == 0 {
			if s != "none" && s != "0" {
				t.Fatalf("%q: no dictionary", s)
			}
			return
		}
		if _, ok := Get(id); !ok {
			t.Fatalf("%q: dictionary %d, which is not here", s, id)
		}
	})
}
