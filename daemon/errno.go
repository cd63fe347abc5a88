package daemon

import (
	"errors"

	"github.com/dlog-dev/dlog/engine"
	"github.com/dlog-dev/dlog/ulog"
)

// errnoOf maps an engine error to the negative errno a reply carries. The
// kernel treats every non-zero error alike except EAGAIN (resend) and ESRCH
// (reconnect), which this table never produces for engine errors.
func errnoOf(err error) int32 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, engine.ErrIO):
		return -int32(ulog.EIO)
	case errors.Is(err, engine.ErrDevice):
		return -int32(enodev)
	default:
		// Bad arguments, a region out of range, a device too small, a log
		// closed under the request.
		return -int32(ulog.EINVAL)
	}
}

// enodev is Linux's ENODEV (19), the kernel's answer for a missing device.
const enodev = 19
