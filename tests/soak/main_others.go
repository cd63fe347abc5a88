//go:build !linux

// Command dlog-soak is dlogd's soak campaign; like dlogd's unix transport
// and /proc sampling it needs Linux.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "dlog-soak runs only on Linux")
	os.Exit(2)
}
