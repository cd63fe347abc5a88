//go:build !linux

package engine

import (
	"errors"
	"os"
)

// fallocate is Linux's; elsewhere reserve writes the bytes.
func fallocate(*os.File, int64) error { return errors.ErrUnsupported }
