package engine

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/dlog-dev/dlog/header"
)

// Log type words.
const (
	TypeCore          = "core"
	TypeDisk          = "disk"
	TypeClusteredCore = "clustered-core"
	TypeClusteredDisk = "clustered-disk"
)

// Config is a parsed log constructor.
type Config struct {
	// Type is the log type word as given.
	Type string
	// TargetLen is the mirror's length in sectors.
	TargetLen uint64
	// RegionSize is the region size in sectors: a power of two, at least
	// 2, at most TargetLen.
	RegionSize uint32
	// Sync is the sync argument (default, "sync" or "nosync").
	Sync header.SyncMode
	// Device is the log device argument, as given (disk types only):
	// "major:minor", a block device path or a regular file.
	Device string
	// BlockOnError is cmirrord's legacy "block_on_error" word (clustered
	// types only); it is kept for the TABLE string and has no other effect.
	BlockOnError bool
}

// Disk reports whether the configuration persists to a log device.
func (c Config) Disk() bool { return c.Type == TypeDisk || c.Type == TypeClusteredDisk }

// Clustered reports whether the type word is one of cmirrord's.
func (c Config) Clustered() bool {
	return c.Type == TypeClusteredCore || c.Type == TypeClusteredDisk
}

// RegionCount is ceil(TargetLen / RegionSize), as the mirror computes it.
func (c Config) RegionCount() uint64 {
	if c.RegionSize == 0 {
		return 0
	}
	rs := uint64(c.RegionSize)
	return c.TargetLen/rs + min(c.TargetLen%rs, 1)
}

// ParseCtr parses the constructor string a dm-log-userspace kernel sends:
// "<target length in sectors> <log type> <log arguments...>", for example
// "4194304 clustered-disk 253:2 1024". Tokens are separated by single or
// repeated spaces; the caller has removed any trailing NUL.
func ParseCtr(s string) (Config, error) {
	f := strings.Fields(s)
	if len(f) < 2 {
		return Config{}, fmt.Errorf("%w: %q: need \"<target length> <log type> <arguments>\"", ErrArgs, s)
	}
	n, err := parseDecimal(f[0], 64)
	if err != nil {
		return Config{}, fmt.Errorf("%w: target length %q: %v", ErrTargetLen, f[0], err)
	}
	return ParseArgs(n, f[1], f[2:])
}

// ParseArgs parses the arguments that follow the log type word.
//
// The kernel's own types take the mirror table's form, argument count
// first, and are parsed exactly as dm-log.c does:
//
//	core <1|2> <region_size> [sync|nosync]
//	disk <2|3> <device> <region_size> [sync|nosync]
//
// cmirrord's types take its form, without a count:
//
//	clustered-core <region_size> [sync|nosync] [block_on_error]
//	clustered-disk <device> <region_size> [sync|nosync] [block_on_error]
//
// The type word alone decides which form applies.
func ParseArgs(targetLen uint64, typ string, args []string) (Config, error) {
	if targetLen == 0 {
		return Config{}, fmt.Errorf("%w: 0 sectors", ErrTargetLen)
	}
	c := Config{Type: typ, TargetLen: targetLen}
	var rest []string
	switch typ {
	case TypeCore, TypeDisk:
		need := 1
		if typ == TypeDisk {
			need = 2
		}
		if len(args) < 1 {
			return Config{}, fmt.Errorf("%w: %s: missing argument count", ErrArgs, typ)
		}
		count, err := parseDecimal(args[0], 32)
		if err != nil {
			return Config{}, fmt.Errorf("%w: %s: argument count %q: %v", ErrArgs, typ, args[0], err)
		}
		if count < uint64(need) || count > uint64(need+1) {
			return Config{}, fmt.Errorf("%w: %s: wrong number of arguments (%d, want %d or %d)", ErrArgs, typ, count, need, need+1)
		}
		if uint64(len(args)-1) != count {
			return Config{}, fmt.Errorf("%w: %s: argument count %d but %d arguments follow", ErrArgs, typ, count, len(args)-1)
		}
		rest = args[1:]
		if typ == TypeDisk {
			c.Device, rest = rest[0], rest[1:]
		}
		if len(rest) == 2 {
			switch rest[1] {
			case "sync":
				c.Sync = header.SyncForce
			case "nosync":
				c.Sync = header.SyncNone
			default:
				return Config{}, fmt.Errorf("%w: %s: unrecognised sync argument %q", ErrArgs, typ, rest[1])
			}
		}
	case TypeClusteredCore, TypeClusteredDisk:
		rest = args
		if typ == TypeClusteredDisk {
			if len(rest) < 1 {
				return Config{}, fmt.Errorf("%w: %s: missing log device", ErrArgs, typ)
			}
			c.Device, rest = rest[0], rest[1:]
		}
		if len(rest) < 1 || len(rest) > 3 {
			return Config{}, fmt.Errorf("%w: %s: %d arguments after the device, want region size and at most two of sync|nosync, block_on_error", ErrArgs, typ, len(rest))
		}
		seenSync := false
		for _, w := range rest[1:] {
			switch {
			case (w == "sync" || w == "nosync") && !seenSync:
				seenSync = true
				c.Sync = header.SyncForce
				if w == "nosync" {
					c.Sync = header.SyncNone
				}
			case w == "block_on_error" && !c.BlockOnError:
				c.BlockOnError = true
			default:
				return Config{}, fmt.Errorf("%w: %s: unexpected or repeated argument %q", ErrArgs, typ, w)
			}
		}
	default:
		return Config{}, fmt.Errorf("%w: unknown log type %q (want core, disk, clustered-core or clustered-disk)", ErrArgs, typ)
	}
	if c.Disk() && c.Device == "" {
		return Config{}, fmt.Errorf("%w: %s: empty log device", ErrArgs, typ)
	}
	rs, err := parseDecimal(rest[0], 32)
	if err != nil {
		return Config{}, fmt.Errorf("%w: %q: %v", ErrRegionSize, rest[0], err)
	}
	if rs < 2 || rs&(rs-1) != 0 || rs > targetLen {
		return Config{}, fmt.Errorf("%w: %d: must be a power of two, at least 2 and at most the target length %d", ErrRegionSize, rs, targetLen)
	}
	c.RegionSize = uint32(rs)
	if n := c.RegionCount(); n > header.MaxRegions {
		return Config{}, fmt.Errorf("%w: %d sectors at region size %d make %d regions, more than 2^32-1", ErrTargetLen, targetLen, rs, n)
	}
	return c, nil
}

// parseDecimal accepts what the kernel's "%u" (or "%llu") with a trailing
// "%c" accepts, minus silent truncation: decimal digits only, no sign, no
// base prefix, no trailing characters, and a value that fits in bits.
func parseDecimal(s string, bits int) (uint64, error) {
	if s == "" {
		return 0, fmt.Errorf("empty number")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("not a decimal number")
		}
	}
	v, err := strconv.ParseUint(s, 10, bits)
	if err != nil {
		return 0, fmt.Errorf("out of range for %d bits", bits)
	}
	return v, nil
}

// String formats c as the arguments ParseArgs accepts, type word first.
func (c Config) String() string {
	var b strings.Builder
	b.WriteString(c.Type)
	switch c.Type {
	case TypeCore, TypeDisk:
		n := 1
		if c.Disk() {
			n++
		}
		if c.Sync != header.SyncDefault {
			n++
		}
		fmt.Fprintf(&b, " %d", n)
	}
	if c.Disk() {
		b.WriteString(" " + c.Device)
	}
	fmt.Fprintf(&b, " %d", c.RegionSize)
	if c.Sync != header.SyncDefault {
		b.WriteString(" " + c.Sync.String())
	}
	if c.BlockOnError {
		b.WriteString(" block_on_error")
	}
	return b.String()
}
