// Package cdbfile opens constant databases (cdb) by path without
// leaking a descriptor: github.com/colinmarc/cdb's Open leaves the file
// open when its index cannot be read (a file cut short, or not a cdb),
// and a server that looks a cdb up per connection would then keep one
// descriptor per connection until the garbage collector runs.
package cdbfile

import (
	"os"

	"github.com/colinmarc/cdb"
)

// Open opens the cdb at path; its Close closes the file.
func Open(path string) (*cdb.CDB, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	db, err := cdb.New(f, nil)
	if err != nil {
		f.Close()
		return nil, err
	}
	return db, nil
}
