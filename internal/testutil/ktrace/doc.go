// Package ktrace parses kernel-trace.txt, the capture of real
// dm-log-userspace traffic (52,755 requests from a Linux 6.1 kernel, kept
// in short form), into entries in file order, for golden codec tests and
// for replaying the kernel's requests through dlogd. The capture is this
// package's testdata/kernel-trace.txt.gz, compiled in: Load never skips,
// and a test that needs the trace fails if it cannot be read.
//
// # Format
//
// Every line but the "#" comments and the hex dumps starts with the guest
// uptime in seconds:
//
//	13.085 REQ seq=1 cn.seq=1 cn.ack=0 cn.len=186 type=1(CTR) ver=3 err=0 luid=0x... uuid="..." dsize=26 data=<hex>
//	13.089 RSP seq=1 type=CTR error=0 dsize=0 data=<hex>
//	12.921 ===== (c) userspace log clustered-core 1024 ...     scenario marker
//	42.175 ... 29552 request/response pairs elided from this section; section totals: CTR=1 ...
//	13.086     ctr string: "..."                                (any other line: a note)
//	13.088     raw request (... = 222 bytes):                   hex dump of the datagram
//	  00000000  de 00 00 00 03 00 00 00  01 00 00 00 00 00 00 00  |................|
//
// A "raw request" dump belongs to the REQ line before it, a "raw reply"
// dump to the RSP line before it (notes may sit in between). Dumps stop at
// nlmsg_len: the kernel's NLMSG_ALIGN padding of a request is not in the
// file (see ulog.AppendRequest).
//
// Parse is strict: any line it does not understand, a dump whose length
// differs from its header, or a summary line whose dsize disagrees with
// its data is an error naming the line, so a change of format cannot go
// unnoticed.
package ktrace
