package bitmap

import "errors"

var (
	// ErrSize is returned by New when the words cannot hold the requested
	// number of bits.
	ErrSize = errors.New("bitmap: words too short for the bit count")
	// ErrLayout is returned by New for an unusable block size or offset.
	ErrLayout = errors.New("bitmap: invalid block layout")
	// ErrAlign is returned by Words for a byte slice that is not 8-byte
	// aligned or whose length is not a multiple of 8.
	ErrAlign = errors.New("bitmap: byte slice not word aligned")
)
