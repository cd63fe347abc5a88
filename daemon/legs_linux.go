//go:build linux

package daemon

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/dlog-dev/dlog/dm"
	"github.com/dlog-dev/dlog/engine"
)

// FlushMirrorLegs flushes the volatile cache of every leg of the mirror
// whose device-mapper table names the userspace log uuid (Options.FlushLegs).
// Each leg is opened and fsync'd: on a block device that issues a cache
// flush (an empty write with REQ_PREFLUSH) to it. The legs sit below the
// mirror, so this cannot wait on the mirror itself. The table is read
// each time: a reload that changes the legs constructs a new log anyway,
// and a stale list would flush the wrong devices.
func FlushMirrorLegs(uuid string) error {
	c, err := dm.Open()
	if err != nil {
		return fmt.Errorf("flush mirror legs of log %s: %w", uuid, err)
	}
	name, m, err := c.FindMirror(uuid)
	c.Close()
	if err != nil {
		return fmt.Errorf("flush mirror legs of log %s: %w", uuid, err)
	}
	if len(m.Legs) == 0 {
		return fmt.Errorf("flush mirror legs of log %s: mirror %s has no legs", uuid, name)
	}
	errs := make([]error, len(m.Legs))
	var wg sync.WaitGroup
	for i, leg := range m.Legs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := flushDevice(leg.Dev); err != nil {
				errs[i] = fmt.Errorf("mirror %s leg %s: %w", name, leg.Dev, err)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("flush mirror legs of log %s: %w", uuid, err)
	}
	return nil
}

// flushDevice issues a cache flush to the block device dev ("major:minor"
// or a path).
func flushDevice(dev string) error {
	p, err := engine.DevicePath(dev)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return os.NewSyscallError("fstat", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return fmt.Errorf("%s is not a block device", p)
	}
	for {
		err := unix.Fsync(int(f.Fd()))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return os.NewSyscallError("fsync "+p, err)
		}
		return nil
	}
}
