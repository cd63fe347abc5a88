//go:build linux

package ulog_test

import (
	"syscall"
	"testing"

	"github.com/dlog-dev/dlog/ulog"
)

// Ensure that the wire errnos are the Linux ones.
func TestErrnoMatchesLinux(t *testing.T) {
	for _, tc := range []struct {
		name      string
		got, want syscall.Errno
	}{
		{"EIO", ulog.EIO, syscall.EIO},
		{"EAGAIN", ulog.EAGAIN, syscall.EAGAIN},
		{"ENOENT", ulog.ENOENT, syscall.ENOENT},
		{"ESRCH", ulog.ESRCH, syscall.ESRCH},
		{"EINVAL", ulog.EINVAL, syscall.EINVAL},
		{"ENOSPC", ulog.ENOSPC, syscall.ENOSPC},
		{"EPROTO", ulog.EPROTO, syscall.EPROTO},
		{"EMSGSIZE", ulog.EMSGSIZE, syscall.EMSGSIZE},
	} {
		if tc.got != tc.want {
			t.Errorf("ulog.%s = %d, syscall.%s = %d", tc.name, tc.got, tc.name, tc.want)
		}
	}
}
