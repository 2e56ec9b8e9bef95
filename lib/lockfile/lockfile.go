// Package lockfile serializes programs on a lock file: omail-pack per
// endpoint, omail-unpack per home.
package lockfile

import (
	"os"
	"syscall"
)

// Lock takes an exclusive flock on path, creating it if need be, and
// waits for it. The lock lasts until unlock is called or the process
// ends, so a crashed holder never leaves it stuck.
func Lock(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}
