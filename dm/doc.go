// Package dm is a small device-mapper client: it talks to the kernel
// through the ioctls of /dev/mapper/control, as dmsetup does, with no
// library and no udev.
//
// It lists devices, reads a device's info, table and status, suspends and
// resumes a device and loads a table. On top of that it parses the mirror
// target's table (ParseMirror) and finds the mirror whose userspace log
// has a given uuid (Control.FindMirror), which is how dlogd learns the legs
// of the mirror a log serves.
//
// Device numbers are strings "major:minor" in tables, as the kernel prints
// them. Every length the kernel returns is checked before it is used;
// malformed answers are errors, never panics. Addressing is by device name.
//
// The table parsing is portable; the ioctls are Linux only.
package dm
