package transport

import "errors"

// Errors callers test for with errors.Is. Listen, Serve and Send wrap
// them with context.
var (
	// ErrSpec is returned by Listen for a --transport value that is
	// neither "netlink" nor "unix:PATH".
	ErrSpec = errors.New("bad transport spec")
	// ErrNoCapability is returned by Listen("netlink") when the process
	// lacks CAP_SYS_ADMIN in its effective set: the kernel would silently
	// drop every reply and every mirror would hang.
	ErrNoCapability = errors.New("CAP_SYS_ADMIN not in the effective capability set")
	// ErrNetNamespace is returned by Listen("netlink") when the process
	// is not in the initial network namespace, the only one in which the
	// connector exists.
	ErrNetNamespace = errors.New("not in the initial network namespace")
	// ErrInUse is returned by Listen("unix:PATH") when another process is
	// listening on PATH.
	ErrInUse = errors.New("in use by another process")
	// ErrServing is returned by Serve when the transport is already being
	// served, or was served before.
	ErrServing = errors.New("transport already served")
	// ErrTruncated is returned by UnixClient.Receive and
	// FakeKernel.Receive when a datagram did not fit the buffer.
	ErrTruncated = errors.New("datagram truncated")
	// ErrUnsupported is returned on platforms without the socket a
	// transport needs (everything but Linux).
	ErrUnsupported = errors.New("not supported on this platform")
)
