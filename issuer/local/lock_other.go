//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package local

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

const (
	// staleLock is how old a lock file must be before it is taken to be the
	// leftover of a crashed process. Creating a CA takes seconds at most.
	staleLock = time.Minute
	lockWait  = 2 * staleLock
)

// lockDir takes dir/.lock by creating it with O_EXCL, on platforms without
// flock. Unlike flock, a crash leaves the file behind, so a lock older than
// staleLock is removed and taken over.
func lockDir(dir string) (unlock func(), err error) {
	name := filepath.Join(dir, lockName)
	deadline := time.Now().Add(lockWait)
	for {
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			_ = f.Close()
			return func() { _ = os.Remove(name) }, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("local ca: create lock file: %w", err)
		}
		if fi, err := os.Stat(name); err == nil && time.Since(fi.ModTime()) > staleLock {
			_ = os.Remove(name)
			continue
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("local ca: timed out waiting for %s; remove it if no other acmegw is starting", name)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
