package vmharness

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestOptionsRoundTrip(t *testing.T) {
	for _, o := range []Options{
		{},
		{Scenarios: []string{"kcore"}},
		{Scenarios: []string{"kcore", "kdisk", "dlogd-smoke", "u_1"}, Timeout: 5 * time.Minute, Verbose: true},
	} {
		line, err := KernelCmdline(o)
		if err != nil {
			t.Fatalf("%+v: %v", o, err)
		}
		got, err := ParseCmdline("BOOT_IMAGE=/vmlinuz " + line + " root=/dev/ram0")
		if err != nil {
			t.Fatalf("ParseCmdline(%q): %v", line, err)
		}
		if !reflect.DeepEqual(got, o) {
			t.Errorf("round trip of %+v through %q gave %+v", o, line, got)
		}
	}
}

func TestKernelCmdline(t *testing.T) {
	line, err := KernelCmdline(Options{Scenarios: []string{"kcore", "kdisk"}, Timeout: 90*time.Second + time.Millisecond}, " loglevel=4 ", "")
	if err != nil {
		t.Fatal(err)
	}
	// The timeout rounds up to whole seconds: the guest must never get less.
	if want := "console=ttyS0 quiet panic=-1 dlog.scenarios=kcore,kdisk dlog.timeout=91 loglevel=4"; line != want {
		t.Errorf("got  %q\nwant %q", line, want)
	}
	for _, bad := range []Options{
		{Scenarios: []string{"Kcore"}},
		{Scenarios: []string{"a b"}},
		{Scenarios: []string{""}},
		{Scenarios: []string{"-x"}},
		{Timeout: -time.Second},
	} {
		if _, err := KernelCmdline(bad); err == nil {
			t.Errorf("KernelCmdline(%+v) accepted bad options", bad)
		}
	}
	if _, err := KernelCmdline(Options{}, "a\nb"); err == nil {
		t.Error("a newline in an extra argument was accepted")
	}
	if _, err := KernelCmdline(Options{}, strings.Repeat("x", 2100)); err == nil {
		t.Error("a command line over 2047 bytes was accepted")
	}
}

func TestParseCmdline(t *testing.T) {
	o, err := ParseCmdline("console=ttyS0 dlog.scenarios=kcore,,kdisk dlog.verbose dlog.other=1 quiet")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(o.Scenarios, []string{"kcore", "kdisk"}) || !o.Verbose || o.Timeout != 0 {
		t.Errorf("%+v", o)
	}
	for _, bad := range []string{"dlog.timeout=0", "dlog.timeout=5m", "dlog.timeout=", "dlog.scenarios=KCORE"} {
		if _, err := ParseCmdline(bad); err == nil {
			t.Errorf("ParseCmdline(%q) accepted it", bad)
		}
	}
}

func TestSplitScenarios(t *testing.T) {
	if got := SplitScenarios(" kcore, kdisk\tkgolden,, "); !reflect.DeepEqual(got, []string{"kcore", "kdisk", "kgolden"}) {
		t.Errorf("got %q", got)
	}
	if got := SplitScenarios(""); len(got) != 0 {
		t.Errorf("empty list gave %q", got)
	}
}
