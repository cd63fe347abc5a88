//go:build !linux

package iouring

import (
	"fmt"
	"os"
	"runtime"
)

// errUnimplemented is returned by every constructor on platforms other than
// Linux, naming the platform so the failure is obvious in logs.
var errUnimplemented = fmt.Errorf("iouring: not implemented on %s/%s", runtime.GOOS, runtime.GOARCH)

// New is only implemented on Linux.
func New(fd int, opts Options) (Writer, error) { return nil, errUnimplemented }

// ProbeAlignment is only implemented on Linux.
func ProbeAlignment(f *os.File) (Alignment, error) { return Alignment{}, errUnimplemented }
