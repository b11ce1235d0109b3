//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package connlimit

// descriptorLimit is unknown here: the cap is taken as given.
func descriptorLimit() (uint64, bool) { return 0, false }
