//go:build linux

package iouring

// SetDisabledPath points the io_uring_disabled sysctl read at path and
// returns a function restoring the real one.
func SetDisabledPath(path string) (restore func()) {
	old := disabledPath
	disabledPath = path
	return func() { disabledPath = old }
}
