package connlimit

// Reserve is how many file descriptors FitDescriptors keeps for what is
// not a connection: the database, the listener, the runtime's poller,
// standard streams, the files a start or an export opens.
const Reserve = 64

// FitDescriptors returns want, or less when the process may not open
// want descriptors besides Reserve. A cap above the descriptor limit does
// not protect: a flood uses up the descriptors first, Accept fails with
// "too many open files", and honest callers wait in the kernel's queue
// until the flood's connections time out. Under the cap the listener can
// always accept, and so close, what is over it.
//
// Go raises the soft limit to the hard one at start on Linux and macOS,
// so this only bites where the hard limit is low (a container started
// with nofile=1024, say).
func FitDescriptors(want int) int {
	limit, ok := descriptorLimit()
	if !ok {
		return want
	}
	return fit(want, limit)
}

func fit(want int, limit uint64) int {
	if limit <= Reserve+1 {
		return 1
	}
	if room := limit - Reserve; uint64(want) > room {
		return int(room)
	}
	return want
}
