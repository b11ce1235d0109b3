//go:build linux || darwin || freebsd

package tallyd_test

import (
	"fmt"
	"syscall"
)

// newOffHeap maps size bytes of anonymous memory.
func newOffHeap(size int) (*offHeap, error) {
	buf, err := syscall.Mmap(-1, 0, max(size, 1), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return nil, fmt.Errorf("map %d bytes for the pre-built requests: %w", size, err)
	}
	return &offHeap{buf: buf}, nil
}

// free unmaps the memory; nothing may use it after.
func (m *offHeap) free() error { return syscall.Munmap(m.buf) }
