//go:build !unix

package committee

import (
	"fmt"
	"os"
)

// lockFile opens the lock file. Without flock on this platform it does not
// keep a second process out: run one committee command at a time.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}
