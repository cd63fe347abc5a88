//go:build !linux

package main

import (
	"context"
	"errors"
)

func restartMirror(context.Context, string) error {
	return errors.New("restarting a mirror needs Linux device-mapper")
}

func wakeMirror(context.Context, string) error {
	return errors.New("waking a mirror needs Linux device-mapper")
}
