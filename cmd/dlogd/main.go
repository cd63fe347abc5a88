// Command dlogd is the dirty region log daemon: it answers the Linux
// kernel's dm-log-userspace requests for device-mapper mirrors, a drop-in
// replacement for LVM2's cmirrord. See `dlogd --help`.
package main

import (
	"fmt"
	"io"
	"os"
)

// exitUsage is the exit status for bad usage and for a pidfile held by
// another instance (cmirrord's lockfile status).
const exitUsage = 2

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, helpMain)
		return exitUsage
	}
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, helpMain)
		return 0
	case "serve":
		return serve(args[1:], stdout, stderr)
	case "inspect":
		return inspect(args[1:], stdout, stderr)
	case "status":
		return status(args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "dlogd: unknown command %q\n\n%s", args[0], helpMain)
		return exitUsage
	}
}
