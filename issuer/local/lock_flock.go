//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package local

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockDir takes an exclusive flock on dir/.lock, waiting for it if another
// process (or goroutine: each call opens its own file description) holds it.
// The kernel drops the lock when its holder dies, so a crash never leaves a
// stale lock behind. The lock file itself stays; deleting it would let two
// processes lock two different files of the same name.
func lockDir(dir string) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("local ca: open lock file: %w", err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("local ca: lock %s: %w", f.Name(), err)
	}
	return func() { _ = f.Close() }, nil // closing releases the flock
}
