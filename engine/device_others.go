//go:build !linux

package engine

import (
	"fmt"
	"runtime"
)

// OpenDevice is only implemented on Linux.
func OpenDevice(arg string, opts Options) (Device, DeviceInfo, error) {
	return openDevice(arg, opts)
}

func openDevice(arg string, _ Options) (Device, DeviceInfo, error) {
	return nil, DeviceInfo{Path: arg}, fmt.Errorf("%w: disk logs are not supported on %s/%s", ErrDevice, runtime.GOOS, runtime.GOARCH)
}

// DevicePath is only implemented on Linux.
func DevicePath(arg string) (string, error) {
	_, _, err := openDevice(arg, Options{})
	return arg, err
}
