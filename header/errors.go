package header

import "errors"

var (
	// ErrShort is returned when a buffer is shorter than the header.
	ErrShort = errors.New("buffer too short for a disk log header")
	// ErrVersion is returned for a header with the right magic and a
	// version other than 1 or 2; the kernel fails the log device.
	ErrVersion = errors.New("incompatible disk log version")
	// ErrBlockSize is returned for a logical block size that is not a power
	// of two of at least 512 bytes.
	ErrBlockSize = errors.New("invalid logical block size")
	// ErrTooManyRegions is returned for a region count above MaxRegions.
	ErrTooManyRegions = errors.New("region count exceeds 2^32-1")
)
