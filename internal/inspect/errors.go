package inspect

import "errors"

var (
	// ErrTruncated is returned for an image too short for its header or
	// for the bitmap area that follows it, or that ends early while read.
	ErrTruncated = errors.New("truncated image")
	// ErrNotLog is returned for an image whose magic is not the disk log's:
	// a device the kernel would take as a fresh log, or one holding
	// something else.
	ErrNotLog = errors.New("not a dirty log")
	// ErrVersion is returned for a header with the right magic and a
	// version other than 1 or 2, which the kernel refuses.
	ErrVersion = errors.New("unsupported disk log version")
	// ErrRegions is returned for a header whose nr_regions exceeds what the
	// image can hold, or the kernel's limit of 2^32-1.
	ErrRegions = errors.New("nr_regions larger than the device can hold")
)
