package iouring

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrClosed is returned by Write and Sync after Close.
	ErrClosed = errors.New("iouring: writer closed")
	// ErrShortWrite is wrapped by a BlockError's Err when the kernel wrote
	// only part of a block and the one retry of the remainder did not finish
	// it. If the retry failed with an errno, Err wraps that errno as well.
	ErrShortWrite = errors.New("iouring: short write")
)

// BlockError is the failure of one block of a batch.
type BlockError struct {
	Index int   // index into the blocks slice given to Write
	Off   int64 // the block's Off
	Err   error // usually a unix.Errno; may wrap ErrShortWrite
}

func (e BlockError) Error() string {
	return fmt.Sprintf("block %d at offset %d: %v", e.Index, e.Off, e.Err)
}

// Unwrap returns e.Err, so errors.Is(err, unix.EINVAL) works on a BlockError.
func (e BlockError) Unwrap() error { return e.Err }

// BatchError reports what failed in one Write. Blocks not listed in Writes
// were written in full.
type BatchError struct {
	// Writes are the failed blocks, in increasing Index order.
	Writes []BlockError
	// Sync is the fdatasync error, nil if it succeeded or was not asked.
	Sync error
}

func (e *BatchError) Error() string {
	var b strings.Builder
	b.WriteString("iouring: ")
	switch len(e.Writes) {
	case 0:
	case 1:
		fmt.Fprintf(&b, "write failed: %v", e.Writes[0])
	default:
		fmt.Fprintf(&b, "%d writes failed, first: %v", len(e.Writes), e.Writes[0])
	}
	if e.Sync != nil {
		if len(e.Writes) > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "sync failed: %v", e.Sync)
	}
	if len(e.Writes) == 0 && e.Sync == nil {
		b.WriteString("batch failed")
	}
	return b.String()
}

// Unwrap returns every block error and the sync error, so errors.Is and
// errors.As look through all of them.
func (e *BatchError) Unwrap() []error {
	errs := make([]error, 0, len(e.Writes)+1)
	for _, w := range e.Writes {
		errs = append(errs, w)
	}
	if e.Sync != nil {
		errs = append(errs, e.Sync)
	}
	return errs
}
