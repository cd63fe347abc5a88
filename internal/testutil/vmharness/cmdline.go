package vmharness

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Options is what the host tells the guest driver, carried on the kernel
// command line as dotted parameters (dlog.scenarios=kcore,kdisk
// dlog.timeout=300 dlog.verbose=1). The kernel keeps unknown dotted
// parameters out of init's environment and arguments; the guest reads them
// back from /proc/cmdline with ParseCmdline.
type Options struct {
	// Scenarios to run, in order. Empty means every scenario the guest knows.
	Scenarios []string
	// Timeout is the guest's own watchdog: when it expires the guest writes
	// what it has and powers off. Zero means the guest's default.
	Timeout time.Duration
	// Verbose makes the guest echo command output to the console.
	Verbose bool
}

// Command-line keys.
const (
	keyScenarios = "dlog.scenarios"
	keyTimeout   = "dlog.timeout"
	keyVerbose   = "dlog.verbose"
)

var scenarioName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// ValidScenarioName reports whether s can be carried on the command line:
// lower-case letters, digits, '-' and '_', starting with a letter or digit.
func ValidScenarioName(s string) bool { return scenarioName.MatchString(s) }

// SplitScenarios splits a comma- or space-separated list, dropping empty
// items ("kcore, kdisk" and "kcore kdisk" give the same two names).
func SplitScenarios(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
}

// Args returns the kernel command-line words for o.
func (o Options) Args() ([]string, error) {
	var args []string
	if len(o.Scenarios) > 0 {
		for _, s := range o.Scenarios {
			if !ValidScenarioName(s) {
				return nil, fmt.Errorf("vmharness: scenario name %q: use lower-case letters, digits, '-' and '_'", s)
			}
		}
		args = append(args, keyScenarios+"="+strings.Join(o.Scenarios, ","))
	}
	if o.Timeout < 0 {
		return nil, fmt.Errorf("vmharness: negative guest timeout %v", o.Timeout)
	}
	if o.Timeout > 0 {
		secs := int64((o.Timeout + time.Second - 1) / time.Second)
		args = append(args, keyTimeout+"="+strconv.FormatInt(secs, 10))
	}
	if o.Verbose {
		args = append(args, keyVerbose+"=1")
	}
	return args, nil
}

// KernelCmdline is the full -append string: the fixed console and panic
// settings, then o's words, then extra words verbatim.
//
// console=ttyS0 sends the console to the serial port qemu -nographic puts on
// stdio; quiet keeps kernel chatter below warnings; panic=-1 reboots at once
// on a panic, which -no-reboot turns into qemu exiting.
func KernelCmdline(o Options, extra ...string) (string, error) {
	args, err := o.Args()
	if err != nil {
		return "", err
	}
	words := append([]string{"console=ttyS0", "quiet", "panic=-1"}, args...)
	for _, e := range extra {
		if strings.ContainsAny(e, "\n\x00") {
			return "", fmt.Errorf("vmharness: kernel argument %q contains a newline or NUL", e)
		}
		if e = strings.TrimSpace(e); e != "" {
			words = append(words, e)
		}
	}
	line := strings.Join(words, " ")
	if len(line) > 2047 { // COMMAND_LINE_SIZE on x86 is 2048 including the NUL
		return "", fmt.Errorf("vmharness: kernel command line is %d bytes, x86 allows 2047", len(line))
	}
	return line, nil
}

// ParseCmdline reads Options back from the contents of /proc/cmdline.
// Words it does not know are ignored; a malformed dlog.* value is an error.
func ParseCmdline(cmdline string) (Options, error) {
	var o Options
	for _, w := range strings.Fields(cmdline) {
		k, v, _ := strings.Cut(w, "=")
		switch k {
		case keyScenarios:
			for _, s := range SplitScenarios(v) {
				if !ValidScenarioName(s) {
					return o, fmt.Errorf("%s: invalid scenario name %q", keyScenarios, s)
				}
				o.Scenarios = append(o.Scenarios, s)
			}
		case keyTimeout:
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil || n == 0 {
				return o, fmt.Errorf("%s=%q: want a positive number of seconds", keyTimeout, v)
			}
			o.Timeout = time.Duration(n) * time.Second
		case keyVerbose:
			o.Verbose = v == "" || v == "1" || v == "y" || v == "yes" || v == "true"
		}
	}
	return o, nil
}
