package inspect

import "os"

// Device is a log device or image file opened read-only.
type Device struct {
	// Path is the file opened (the device node for major:minor).
	Path string
	// Kind says what it is: "block device M:m" or "regular file".
	Kind string
	// Size is its size in bytes.
	Size int64
	// Direct reports reads with O_DIRECT (false where the filesystem
	// refuses it, as tmpfs before Linux 6.6 does).
	Direct bool

	f *os.File
	direct
}
