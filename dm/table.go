package dm

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrNotFound is returned when no device (or no mirror with the wanted
// log) exists.
var ErrNotFound = errors.New("dm: not found")

// ErrNotMirror is returned by ParseMirror for a table line it cannot read
// as a mirror target's parameters.
var ErrNotMirror = errors.New("dm: not a mirror table")

// Device is one device-mapper device.
type Device struct {
	Name         string
	Major, Minor uint32
}

// Target is one line of a device's table (or of its status): the sectors
// it covers, the target type and its parameter string.
type Target struct {
	Start  uint64 // first sector
	Length uint64 // sectors
	Type   string // "mirror", "linear", ...
	Params string // as the kernel prints them, without the trailing space
}

// MirrorLog is the dirty log part of a mirror table: its type ("core",
// "disk", "userspace") and the arguments after the count.
type MirrorLog struct {
	Type string
	Args []string
}

// Leg is one mirror leg: its device ("major:minor" or a path) and the
// sector offset on it.
type Leg struct {
	Dev    string
	Offset uint64
}

// Mirror is a parsed mirror target's parameter string:
//
//	<log type> <#log args> <log args...> <#legs> (<dev> <offset>){#legs} [<#features> <features...>]
type Mirror struct {
	Log      MirrorLog
	Legs     []Leg
	Features []string
}

// takeCount reads a count and checks that at least that many words follow
// it: a count larger than the rest of the line is malformed.
func takeCount(words []string, what string) (int, []string, error) {
	if len(words) == 0 {
		return 0, nil, fmt.Errorf("%w: missing %s", ErrNotMirror, what)
	}
	n, err := strconv.ParseUint(words[0], 10, 31)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %s %q: %v", ErrNotMirror, what, words[0], err)
	}
	if int(n) > len(words)-1 {
		return 0, nil, fmt.Errorf("%w: %s is %d but only %d words follow", ErrNotMirror, what, n, len(words)-1)
	}
	return int(n), words[1:], nil
}

// ParseMirror reads a mirror target's table parameters, as `dmsetup table`
// prints them after "mirror".
func ParseMirror(params string) (Mirror, error) {
	w := strings.Fields(params)
	var m Mirror
	if len(w) == 0 {
		return m, fmt.Errorf("%w: empty", ErrNotMirror)
	}
	m.Log.Type, w = w[0], w[1:]
	n, w, err := takeCount(w, "log argument count")
	if err != nil {
		return m, err
	}
	m.Log.Args, w = append([]string(nil), w[:n]...), w[n:]
	legs, w, err := takeCount(w, "leg count")
	if err != nil {
		return m, err
	}
	if legs == 0 || 2*legs > len(w) {
		return m, fmt.Errorf("%w: %d legs need %d words, %d remain", ErrNotMirror, legs, 2*legs, len(w))
	}
	for i := 0; i < legs; i++ {
		off, err := strconv.ParseUint(w[2*i+1], 10, 64)
		if err != nil {
			return m, fmt.Errorf("%w: leg %d offset %q: %v", ErrNotMirror, i, w[2*i+1], err)
		}
		m.Legs = append(m.Legs, Leg{Dev: w[2*i], Offset: off})
	}
	w = w[2*legs:]
	if len(w) > 0 {
		nf, rest, err := takeCount(w, "feature count")
		if err != nil {
			return m, err
		}
		if nf != len(rest) {
			return m, fmt.Errorf("%w: %d features announced, %d words follow", ErrNotMirror, nf, len(rest))
		}
		m.Features = append([]string(nil), rest...)
	}
	return m, nil
}

// String formats the mirror back into table parameters, as the kernel
// takes them in a table load.
func (m Mirror) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %d", m.Log.Type, len(m.Log.Args))
	for _, a := range m.Log.Args {
		b.WriteString(" " + a)
	}
	fmt.Fprintf(&b, " %d", len(m.Legs))
	for _, l := range m.Legs {
		fmt.Fprintf(&b, " %s %d", l.Dev, l.Offset)
	}
	if len(m.Features) > 0 {
		fmt.Fprintf(&b, " %d %s", len(m.Features), strings.Join(m.Features, " "))
	}
	return b.String()
}

// LogUUID returns the uuid of a userspace log ("userspace <n> <uuid> ..."),
// and false for any other log type.
func (m Mirror) LogUUID() (string, bool) {
	if m.Log.Type != "userspace" || len(m.Log.Args) == 0 {
		return "", false
	}
	return m.Log.Args[0], true
}

// ParseDev reads a "major:minor" device number.
func ParseDev(s string) (major, minor uint32, err error) {
	a, b, ok := strings.Cut(s, ":")
	if !ok {
		return 0, 0, fmt.Errorf("dm: device %q is not major:minor", s)
	}
	ma, err1 := strconv.ParseUint(a, 10, 32)
	mi, err2 := strconv.ParseUint(b, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, fmt.Errorf("dm: device %q: %w", s, err)
	}
	return uint32(ma), uint32(mi), nil
}
