// Command dlogd is the dirty region log daemon: it answers the Linux
// kernel's dm-log-userspace requests for device-mapper mirrors, a drop-in
// replacement for LVM2's cmirrord. See `dlogd --help`.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// exitUsage is the exit status for bad usage and for a pidfile held by
// another instance (cmirrord's lockfile status).
const exitUsage = 2

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return usageError(stderr, "dlogd", "missing command (serve, status, profile, inspect, adopt, release, version)")
	}
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, helpMain)
		return 0
	case "-V", "--version", "version":
		if len(args) > 1 {
			return usageError(stderr, "dlogd", "%s takes no argument, got %q", args[0], args[1])
		}
		fmt.Fprintln(stdout, currentBuild().String())
		return 0
	case "serve":
		return serve(args[1:], stdout, stderr)
	case "inspect":
		return inspect(args[1:], stdout, stderr)
	case "status":
		return status(args[1:], stdout, stderr)
	case "profile":
		return profileCmd(args[1:], stdout, stderr)
	case "adopt":
		return adopt(args[1:], stdout, stderr)
	case "release":
		return release(args[1:], stdout, stderr)
	default:
		return usageError(stderr, "dlogd", "unknown command %q (serve, status, profile, inspect, adopt, release, version)", args[0])
	}
}

// usageError prints what was wrong and where the manual is, in two lines,
// and returns exitUsage. cmd is the command as typed ("dlogd serve"); its
// manual is `cmd --help`.
func usageError(w io.Writer, cmd, format string, a ...any) int {
	fmt.Fprintf(w, "%s: %s\n", cmd, fmt.Sprintf(format, a...))
	fmt.Fprintf(w, "Try '%s --help' for more information.\n", cmd)
	return exitUsage
}

// parseFlags parses args with fs. On --help it prints help to stdout; on
// a bad option it prints the error the dlogd way (--name, not Go's -name)
// and the hint. ok is false when the caller must return code.
func parseFlags(fs *flag.FlagSet, args []string, help string, stdout, stderr io.Writer) (code int, ok bool) {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	switch {
	case err == nil:
		return 0, true
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, help)
		return 0, false
	}
	return usageError(stderr, fs.Name(), "%s", flagError(err)), false
}

// parseInterleaved is parseFlags for a command whose options may come
// before and after its arguments; it returns the arguments.
func parseInterleaved(fs *flag.FlagSet, args []string, help string, stdout, stderr io.Writer) (pos []string, code int, ok bool) {
	for rest := args; ; {
		if code, ok := parseFlags(fs, rest, help, stdout, stderr); !ok {
			return nil, code, false
		}
		if fs.NArg() == 0 {
			return pos, 0, true
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}
}

// flagError rewords the flag package's errors with the double dashes the
// manual uses.
func flagError(err error) string {
	msg := err.Error()
	for _, r := range []struct{ from, to string }{
		{"flag provided but not defined: -", "unknown option --"},
		{"flag needs an argument: -", "option needs a value: --"},
		{" for flag -", " for option --"},
		{" for -", " for option --"},
		{"bad flag syntax: ", "bad option syntax: "},
	} {
		if i := strings.Index(msg, r.from); i >= 0 {
			return msg[:i] + r.to + strings.TrimPrefix(msg[i+len(r.from):], "-")
		}
	}
	return msg
}
