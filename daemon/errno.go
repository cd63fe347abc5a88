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
	default:
		// Bad arguments, a log device missing, unusable or too small
		// (docs/conformance.md item 23: -EINVAL for every CTR that cannot
		// use its device), a region out of range, a log closed under the
		// request.
		return -int32(ulog.EINVAL)
	}
}
