//go:build linux

package iouring

// SetDisabledPath points the io_uring_disabled sysctl read at path and
// returns a function restoring the real one.
func SetDisabledPath(path string) (restore func()) {
	old := disabledPath
	disabledPath = path
	return func() { disabledPath = old }
}

// DsyncWrites reports how many runs w made durable with one
// pwritev2(RWF_DSYNC).
func DsyncWrites(w Writer) uint64 {
	switch w := w.(type) {
	case *pwritevWriter:
		return w.dsync.n
	case *uringWriter:
		return w.dsync.n
	}
	return 0
}
