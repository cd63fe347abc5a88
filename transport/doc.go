// Package transport moves dm-log-userspace datagrams in and out of dlogd.
//
// A Transport receives datagrams in the kernel's format (nlmsghdr + cn_msg
// + dm_ulog_request + payload, docs/protocol.md §1.2) and hands each to a
// Handler together with a Peer to send the reply to. Two transports exist,
// chosen by the --transport flag through Listen:
//
//	netlink    the kernel's connector (AF_NETLINK, NETLINK_CONNECTOR,
//	           multicast group 7): production
//	unix:PATH  a listening AF_UNIX SOCK_SEQPACKET socket carrying the same
//	           datagrams: tests, replays and fake kernels
//
// The framing itself is package ulog's. The transport applies the checks
// that decide whether a datagram is a request at all, shares them between
// both transports, and counts and logs (rate-limited) what it drops
// instead of handing it on (Stats):
//
//	check                                       drop reason
//	sender nl_pid is 0 (netlink)                foreign-sender
//	MSG_TRUNC not set (<= MaxDatagram bytes)    truncated
//	ulog.DecodeRequest is not ActionDrop:
//	  36 header bytes, nlmsg_len >= 36          short
//	  nlmsg_len <= received, cn_msg.len fits    bad-length
//	  nlmsg_type NLMSG_DONE                     not-done
//	  cn_msg.id 7/1                             connector-id
//
// A request the codec wants answered with an error (ActionAckAgain,
// ActionReplyError) is handed on: its headers are sound and the kernel
// waits for that answer.
//
// The netlink transport binds with no groups and joins only group 7,
// drops datagrams not sent by the kernel (nl_pid 0, or Options.AllowPID in
// tests, where replies go instead), and Listen refuses to start without
// CAP_SYS_ADMIN (ErrNoCapability) or outside the initial network namespace
// (ErrNetNamespace). Receive overruns are counted, logged and survived;
// NETLINK_BROADCAST_ERROR and NETLINK_NO_ENOBUFS are never set. Its
// reader blocks in recvmsg on its own thread (Serve sees Close and the end
// of its context within 200 ms), not in the runtime's poller unless
// Options.NetpollWait; Options.Poll adds a bounded busy-poll before it
// blocks. Sends never block. It has Options.Receivers readers that take
// turns, one at a time in recvmsg and Handle; a Handle that must block
// detaches (Datagram.Detach) and another reader takes over.
//
// The unix transport carries the same datagrams over SOCK_SEQPACKET; each
// connection is its own Peer, and a client is admitted only if its uid is
// 0 or the daemon's euid (on top of the socket file's Options.Mode). A
// stale socket file is replaced only if nothing answers on it (else
// ErrInUse). UnixClient is the client side.
//
// Once running, neither transport allocates per datagram, and no lock is
// held across a send.
//
// The reasons for each check and choice: docs/design/transport.md.
package transport
