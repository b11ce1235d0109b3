package atomicfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
)

// WriteNew writes data to a new file at path with mode 0600. It never
// replaces a file: when path exists it fails with an error wrapping
// fs.ErrExist, so of two processes racing to create the same file, the
// first one's bytes are kept.
func WriteNew(path string, data []byte) error {
	tmp, err := writeTemp(path, data)
	if err != nil {
		return err
	}
	defer os.Remove(tmp) // the link made a second name; this one goes
	// Link, unlike rename, fails rather than replace an existing file.
	if err := os.Link(tmp, path); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// Replace writes data to path with mode 0600, replacing any file there in
// one step: a reader sees the old bytes or the new ones.
func Replace(path string, data []byte) error {
	tmp, err := writeTemp(path, data)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// writeTemp writes data to a synced temporary file named after path
// (path's base and ".tmp-", so a crash's leftovers can be found) in the
// same folder, and returns its name.
func writeTemp(path string, data []byte) (string, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*") // mode 0600 less the umask
	if err != nil {
		return "", err
	}
	name := tmp.Name()
	err = tmp.Chmod(0o600) // exactly 0600, whatever the umask
	if runtime.GOOS == "windows" {
		err = nil // no Unix permission bits
	}
	if err == nil {
		_, err = tmp.Write(data)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return "", fmt.Errorf("write %s: %w", name, err)
	}
	return name, nil
}

// SyncDir makes the names created, renamed or removed in dir durable. A
// filesystem or system that cannot sync a folder (Windows, some network
// and FUSE filesystems) still has the names, so that is not an error.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && runtime.GOOS != "windows" && !errors.Is(err, errors.ErrUnsupported) && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("sync folder %s: %w", dir, err)
	}
	return nil
}
