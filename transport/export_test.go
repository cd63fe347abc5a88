package transport

// ListenFakeKernel is Listen("netlink", opts) in test mode: it also
// accepts datagrams from the netlink port id pid (a FakeKernel's PortID),
// replies to pid instead of the kernel, and skips the network namespace
// check. It exists only in the package's tests: an operator has no such
// switch.
func ListenFakeKernel(opts Options, pid uint32) (Transport, error) {
	opts.setDefaults()
	return listenNetlink(opts, pid)
}
