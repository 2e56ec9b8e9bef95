package local

import (
	"testing"

	"github.com/colinmarc/cdb"
)

func writeCDB(t *testing.T, path string, m map[string]string) {
	t.Helper()
	w, err := cdb.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range m {
		if err := w.Put([]byte(k), []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Freeze(); err != nil {
		t.Fatal(err)
	}
}
