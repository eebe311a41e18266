package local

import (
	"fmt"
	"os"
	"path/filepath"
)

// file is one file to write into the CA directory.
type file struct {
	name string
	data []byte
	mode os.FileMode
}

// writeFiles writes files into dir so that each appears whole or not at all:
// every file is first written and synced under a temporary name, and only
// then are they all renamed into place. The renames are the only step a crash
// can split, and they take microseconds. Temporary names start with a dot and
// are never mistaken for CA files.
func writeFiles(dir string, files []file) (err error) {
	tmps := make([]string, 0, len(files))
	defer func() {
		if err != nil {
			for _, t := range tmps {
				_ = os.Remove(t) // after a successful rename this is a no-op
			}
		}
	}()
	for _, f := range files {
		tmp, err := writeTemp(dir, f)
		if err != nil {
			return err
		}
		tmps = append(tmps, tmp)
	}
	for i, f := range files {
		if err := os.Rename(tmps[i], filepath.Join(dir, f.name)); err != nil {
			return fmt.Errorf("local ca: install %s: %w", f.name, err)
		}
	}
	syncDir(dir)
	return nil
}

func writeTemp(dir string, f file) (string, error) {
	t, err := os.CreateTemp(dir, "."+f.name+".*.tmp") // created 0600
	if err != nil {
		return "", fmt.Errorf("local ca: write %s: %w", f.name, err)
	}
	name := t.Name()
	_, err = t.Write(f.data)
	if err == nil && f.mode != 0o600 {
		err = t.Chmod(f.mode)
	}
	if err == nil {
		err = t.Sync()
	}
	if cerr := t.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(name)
		return "", fmt.Errorf("local ca: write %s: %w", f.name, err)
	}
	return name, nil
}

// syncDir makes the renames durable. Some platforms cannot sync a
// directory; the files themselves are already synced, so errors are ignored.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}
