package engine

import "errors"

var (
	// ErrArgs is returned for a malformed constructor: wrong argument
	// count, unknown log type, a sync word the kernel does not accept.
	ErrArgs = errors.New("engine: invalid log arguments")
	// ErrRegionSize is returned for a region size that is not a decimal
	// power of two of at least 2 sectors and at most the target length.
	ErrRegionSize = errors.New("engine: invalid region size")
	// ErrTargetLen is returned for a target length of 0 or one whose region
	// count exceeds 2^32-1.
	ErrTargetLen = errors.New("engine: invalid target length")
	// ErrDevice is returned when the log device cannot be found or opened.
	ErrDevice = errors.New("engine: log device unusable")
	// ErrDeviceTooSmall is returned when the log device is smaller than the
	// image (the kernel's "log device ... too small").
	ErrDeviceTooSmall = errors.New("engine: log device too small")
	// ErrRegionRange is returned for a region at or beyond the region count.
	ErrRegionRange = errors.New("engine: region out of range")
	// ErrIO is returned (wrapped around the cause) when the log device
	// failed a read, write or cache flush. The log stays usable in memory
	// and its status shows D or F, as the kernel's does.
	ErrIO = errors.New("engine: log device I/O failed")
	// ErrClosed is returned for any call after Close.
	ErrClosed = errors.New("engine: log closed")
	// ErrBigEndian is returned by the disk log on hosts whose byte order
	// does not match the kernel's little-endian bit order.
	ErrBigEndian = errors.New("engine: disk log needs a little-endian host")
)
