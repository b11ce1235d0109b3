//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package connlimit

import "syscall"

// descriptorLimit is the process's soft limit on open files.
func descriptorLimit() (uint64, bool) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, false
	}
	return uint64(rl.Cur), true
}
