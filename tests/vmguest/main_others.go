//go:build !linux

// Command dlog-vmguest is the in-guest driver of dlog's real-kernel tests;
// it only exists for Linux guests.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "dlog-vmguest runs only inside the Linux VM that internal/testutil/vmharness boots")
	os.Exit(2)
}
