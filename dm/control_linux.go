//go:build linux

package dm

import (
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ControlPath is the device-mapper control node.
const ControlPath = "/dev/mapper/control"

// The ioctl commands: _IOWR(0xfd, nr, struct dm_ioctl).
const (
	cmdVersion     = 0
	cmdListDevices = 2
	cmdDevSuspend  = 6
	cmdDevStatus   = 7
	cmdTableLoad   = 9
	cmdTableClear  = 10
	cmdTableStatus = 12
)

func ioctlNumber(nr uintptr) uintptr {
	return 3<<30 | headerSize<<16 | 0xfd<<8 | nr
}

// Info is what DM_DEV_STATUS tells of a device.
type Info struct {
	Name, UUID      string
	Major, Minor    uint32
	OpenCount       int32
	EventNr         uint32
	TargetCount     uint32
	Suspended       bool
	ReadOnly        bool
	ActivePresent   bool // a live table
	InactivePresent bool // a loaded table not yet resumed
}

// Control is an open /dev/mapper/control. Its methods may be called from
// several goroutines.
type Control struct {
	f *os.File
}

// Open opens the control node. It fails with an error wrapping
// os.ErrNotExist where device-mapper is absent.
func Open() (*Control, error) {
	f, err := os.OpenFile(ControlPath, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("dm: open %s (is the dm_mod module loaded?): %w", ControlPath, err)
	}
	return &Control{f: f}, nil
}

// Close closes the control node.
func (c *Control) Close() error { return c.f.Close() }

// do runs one ioctl, growing the buffer while the kernel says it was too
// small, and returns the answer with its decoded header.
func (c *Control) do(cmd uintptr, name string, flags uint32, payload []byte) ([]byte, header, error) {
	size := 16 << 10
	for {
		b, err := encodeRequest(name, flags, payload, size)
		if err != nil {
			return nil, header{}, err
		}
		if err := c.raw(cmd, name, b); err != nil {
			return nil, header{}, err
		}
		h, err := decodeHeader(b)
		if err != nil {
			return nil, h, err
		}
		if h.flags&flagBufferFull == 0 {
			return b, h, nil
		}
		if size >= 64<<20 {
			return nil, h, fmt.Errorf("dm: ioctl %d on %q: answer larger than %d bytes", cmd, name, size)
		}
		size *= 4
	}
}

// Version returns the kernel's device-mapper interface version.
func (c *Control) Version() ([3]uint32, error) {
	b, _, err := c.do(cmdVersion, "", 0, nil)
	if err != nil {
		return [3]uint32{}, err
	}
	return [3]uint32{le.Uint32(b[0:]), le.Uint32(b[4:]), le.Uint32(b[8:])}, nil
}

// Devices lists every device-mapper device.
func (c *Control) Devices() ([]Device, error) {
	b, h, err := c.do(cmdListDevices, "", 0, nil)
	if err != nil {
		return nil, err
	}
	return decodeNames(b, h)
}

// Info returns a device's state.
func (c *Control) Info(name string) (Info, error) {
	_, h, err := c.do(cmdDevStatus, name, 0, nil)
	if err != nil {
		return Info{}, err
	}
	ma, mi := decodeDev(h.dev)
	return Info{
		Name: h.name, UUID: h.uuid, Major: ma, Minor: mi,
		OpenCount: h.openCount, EventNr: h.eventNr, TargetCount: h.targetCount,
		Suspended:       h.flags&flagSuspend != 0,
		ReadOnly:        h.flags&flagReadOnly != 0,
		ActivePresent:   h.flags&flagActivePresent != 0,
		InactivePresent: h.flags&flagInactivePres != 0,
	}, nil
}

// Table returns a device's live table, as `dmsetup table` prints it.
func (c *Control) Table(name string) ([]Target, error) {
	return c.targets(name, flagStatusTable)
}

// Status returns a device's status lines, as `dmsetup status` prints them.
func (c *Control) Status(name string) ([]Target, error) {
	return c.targets(name, 0)
}

func (c *Control) targets(name string, flags uint32) ([]Target, error) {
	b, h, err := c.do(cmdTableStatus, name, flags, nil)
	if err != nil {
		return nil, err
	}
	return decodeTargets(b, h)
}

// SuspendOptions tune Suspend.
type SuspendOptions struct {
	NoFlush  bool // do not flush queued I/O (dmsetup --noflush)
	NoLockfs bool // do not freeze a mounted filesystem (dmsetup --nolockfs)
}

// Suspend suspends a device: the targets' presuspend and postsuspend run
// (a mirror's log persists itself) and new I/O waits until Resume.
func (c *Control) Suspend(name string, o SuspendOptions) error {
	flags := uint32(flagSuspend)
	if o.NoFlush {
		flags |= flagNoFlush
	}
	if o.NoLockfs {
		flags |= flagSkipLockfs
	}
	_, _, err := c.do(cmdDevSuspend, name, flags, nil)
	return err
}

// Resume resumes a device, making a loaded (inactive) table live first if
// there is one.
func (c *Control) Resume(name string) error {
	_, _, err := c.do(cmdDevSuspend, name, 0, nil)
	return err
}

// Load loads ts as the device's inactive table; Resume makes it live.
func (c *Control) Load(name string, ts []Target) error {
	if len(ts) == 0 {
		return errors.New("dm: load: no targets")
	}
	payload, err := encodeTargets(ts)
	if err != nil {
		return err
	}
	b, err := encodeRequest(name, 0, payload, 0)
	if err != nil {
		return err
	}
	le.PutUint32(b[offTargetCount:], uint32(len(ts)))
	return c.raw(cmdTableLoad, name, b)
}

// ClearInactive drops a loaded table that was not resumed.
func (c *Control) ClearInactive(name string) error {
	_, _, err := c.do(cmdTableClear, name, 0, nil)
	return err
}

func (c *Control) raw(cmd uintptr, name string, b []byte) error {
	rc, err := c.f.SyscallConn()
	if err != nil {
		return fmt.Errorf("dm: %w", err)
	}
	var errno unix.Errno
	if cerr := rc.Control(func(fd uintptr) {
		_, _, errno = unix.Syscall(unix.SYS_IOCTL, fd, ioctlNumber(cmd), uintptr(unsafe.Pointer(&b[0])))
	}); cerr != nil {
		return fmt.Errorf("dm: %w", cerr)
	}
	if errno == unix.ENXIO {
		return fmt.Errorf("dm: device %q: %w", name, ErrNotFound)
	}
	if errno != 0 {
		return fmt.Errorf("dm: ioctl %d on %q: %w", cmd, name, errno)
	}
	return nil
}

// FindMirror returns the name and parsed table of the mirror device whose
// userspace log has the given uuid. It fails with ErrNotFound when no
// device's table names it.
func (c *Control) FindMirror(uuid string) (string, Mirror, error) {
	devs, err := c.Devices()
	if err != nil {
		return "", Mirror{}, err
	}
	for _, d := range devs {
		ts, err := c.Table(d.Name)
		if errors.Is(err, ErrNotFound) {
			continue // removed since the listing
		}
		if err != nil {
			return "", Mirror{}, err
		}
		if m, ok := mirrorIn(ts, uuid); ok {
			return d.Name, m, nil
		}
	}
	return "", Mirror{}, fmt.Errorf("dm: no mirror with userspace log %s: %w", uuid, ErrNotFound)
}

// MirrorOf returns the mirror in device name's table whose userspace log
// has the given uuid. It fails with ErrNotFound when the device is gone or
// its table names no such log.
func (c *Control) MirrorOf(name, uuid string) (Mirror, error) {
	ts, err := c.Table(name)
	if err != nil {
		return Mirror{}, err
	}
	if m, ok := mirrorIn(ts, uuid); ok {
		return m, nil
	}
	return Mirror{}, fmt.Errorf("dm: device %s: no mirror with userspace log %s: %w", name, uuid, ErrNotFound)
}

// mirrorIn finds the mirror target whose userspace log has uuid.
func mirrorIn(ts []Target, uuid string) (Mirror, bool) {
	for _, t := range ts {
		if t.Type != "mirror" {
			continue
		}
		m, err := ParseMirror(t.Params)
		if err != nil {
			continue
		}
		if u, ok := m.LogUUID(); ok && u == uuid {
			return m, true
		}
	}
	return Mirror{}, false
}
