// Package fakekernel plays the kernel's end of the userspace log protocol
// in tests: it builds requests exactly as dm-log-userspace-transfer.c does,
// matches replies by sequence number, and checks every reply against the
// kernel's acceptance rules and dlog's stricter ones (a reply echoes the
// request header; a successful reply carries exactly the payload the
// kernel expects; booleans are 0 or 1; only -ESRCH may carry data, zeros
// of the real answer's size).
//
// Two ends share those rules:
//
//   - Conn, a connection to a log daemon's unix transport (a dlogd
//     process), with the kernel's resend after a timeout and on -EAGAIN;
//   - Local, which hands datagrams straight to an in-process
//     transport.Handler (a daemon.Daemon) and collects its replies, with
//     any number of requests outstanding.
//
// It is test code: nothing in cmd/dlogd may import it.
package fakekernel
