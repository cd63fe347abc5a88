// Package transport moves dm-log-userspace datagrams in and out of dlogd.
//
// A Transport receives datagrams in the kernel's format (nlmsghdr + cn_msg
// + dm_ulog_request + payload, protocol.md §1.2) and hands each to a
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
// # The netlink transport
//
// Bind mask 0, then join group 7. sockaddr_nl.nl_groups is a bitmask (bit
// n-1 is group n), so binding with nl_groups = CN_IDX_DM = 7, as cmirrord
// does, subscribes to groups 1-3 (proc connector, CIFS, w1), not 7; group
// 7 is joined with NETLINK_ADD_MEMBERSHIP. The socket binds with no groups
// and joins only 7, and still drops any message whose cn_msg.id is not 7/1
// (protocol.md §1.1, §8.1 items 1 and 6).
//
// Sender check. The kernel sends from nl_pid 0. Any process with
// CAP_NET_ADMIN can multicast to group 7 as well, so a datagram from any
// other port id is a forgery and is dropped (§1.3, §8.1 item 4). Replies
// are unicast to nl_pid 0. (The package's own tests also accept a fake
// kernel's port id and reply there, because replies to nl_pid 0 vanish into
// the kernel's connector on a machine without dm-log-userspace; that mode
// is not reachable from outside the package.)
//
// Capability check. The connector accepts a reply only if the task that
// sends it has CAP_SYS_ADMIN (cn_ulog_callback checks capable() in the
// sender's context); otherwise the reply is silently dropped and the
// kernel waits, resending every 15 s, for ever: every mirror using the log
// hangs. Joining group 7 needs no capability, so nothing else would show
// the problem. Listen therefore refuses with ErrNoCapability when CapEff in
// /proc/self/status lacks bit 21 (§8.1 item 3).
//
// Network namespace. The connector's kernel socket exists only in the
// initial network namespace; in any other the socket opens and joins group
// 7 and nothing ever arrives. Listen detects this cheaply, because
// /proc/net/connector is registered in the initial namespace only, and
// refuses with ErrNetNamespace.
//
// Receive buffer and overruns. The kernel multicasts a request to every
// member of group 7; a member whose queue is full is skipped and later gets
// ENOBUFS from recvmsg. If nobody got the request the kernel sees -ESRCH
// and runs its reconnect sequence (CTR, RESUME, retry; protocol.md §1.6),
// so an overrun costs time, not correctness. NETLINK_BROADCAST_ERROR would
// turn that -ESRCH into an -ENOBUFS the kernel never retries, so it is
// never set; NETLINK_NO_ENOBUFS would hide overruns, so it is not set
// either. Overruns are made rare with a large receive buffer
// (DefaultRcvBuf, SO_RCVBUFFORCE as root), counted, logged, and Serve
// goes on (§8.1 item 9).
//
// # The unix transport
//
// Device-mapper and dm-log-userspace are not on every machine (not in CI
// containers, not on this project's build hosts), and the connector
// delivers nothing to an unprivileged process or outside the initial
// network namespace. The unix transport carries the same datagrams over a
// SOCK_SEQPACKET socket, which keeps message boundaries like netlink, so
// the whole protocol can be driven end to end anywhere: by tests, by
// replays of kernel-trace.txt, and by fake kernels written in any language
// (a few lines of socket code on the other end).
//
// Every message in either direction is one datagram exactly as the kernel
// sends it; datagrams longer than MaxDatagram (a netlink header and
// CONNECTOR_MAX_MSG_SIZE) are dropped as truncated. Any number of clients
// may connect; each connection has its own reader goroutine and is its
// own Peer, so every reply goes back on the connection its request came
// from. A client is admitted only if its SO_PEERCRED uid is 0 or the
// daemon's euid, on top of the socket file's mode (Options.Mode, 0600 by
// default, set before listen(2) so the socket is never reachable with a
// looser mode). A socket file left by a dead process is replaced, but
// only if nothing answers a connect on it; a live one fails with
// ErrInUse. Close closes every connection and removes the socket file.
// An empty datagram is dropped as short. The connection ends when the
// client closes it or shuts down its sending side (recvmsg cannot tell a
// half-close from a close), so a client must read its replies before
// either.
//
// UnixClient is the client side; FakeKernel plays the kernel on a real
// netlink socket (root only).
//
// # Performance
//
// The daemon answers IN_SYNC, MARK and CLEAR without allocating, so the
// transport allocates nothing per datagram in either direction once
// running. Reading uses recvmsg through syscall.RawConn.Read (the runtime
// poller waits for readability) with a reused buffer, a preallocated
// msghdr, iovec and source address, and a read function created once per
// socket. Sending is a non-blocking sendto of a preallocated address on
// the raw descriptor under a read lock that only Close takes exclusively,
// so many goroutines send at once and no lock is held across anything
// slow: on netlink a full peer queue is a lost datagram (the kernel never
// has one); on unix a full client queue is waited for by polling without
// any lock held, up to Options.SendTimeout.
//
// The netlink transport's concrete type also has PortID() uint32 (reach
// it through an interface assertion): the socket's port id, for the
// nlmsg_pid of replies, which the kernel does not look at.
package transport
