// Package vmharness boots Debian's stock kernel under qemu (TCG) and runs the
// in-guest test driver, tests/vmguest, against the kernel's real
// device-mapper: dm-mirror with the kernel's own core and disk logs, and
// dm-log-userspace served by dlogd.
//
// # How a run works
//
//  1. scripts/vm/deps.sh (make deps) has downloaded the kernel package and
//     built a base initramfs (busybox, dmsetup and its libraries, the dm,
//     loop and virtio modules), cached under build/vm/<kernel-version>/.
//  2. Run writes an overlay cpio (newc, gzip) holding /init, the guest
//     driver as /sbin/dlog-vmguest, /sbin/dlogd when the caller built one,
//     and any extra files, and appends it to the cached base: the kernel
//     unpacks concatenated initramfs archives in order.
//  3. qemu-system-x86_64 boots that with the scenarios named on the kernel
//     command line (dlog.scenarios=...), under a context timeout that kills
//     qemu: a hung mirror fails the run instead of eating CI's time. The
//     serial console is streamed to console.log and, when asked, to the user.
//  4. The guest writes a tar of its /out directory (report.json, dmesg, logs,
//     golden images) onto a raw virtio disk and powers off; Run reads it back
//     with archive/tar and decodes the Report.
//
// Two more things a boot can do: attach extra raw disks that persist from
// one boot to the next (Config.Disks), and kill qemu like a power cut when
// the console shows a marker (Config.KillOn): the crash test uses both.
//
// # Several guests at once (the cluster tests)
//
// tests/vm's TestVMCluster (make vmclustertest) runs one Run per node of a
// cluster, in parallel, on the same kernel. Config.SharedDisks attaches raw
// images that every guest opens at once (cache=none, share-rw=on, no image
// locking, in fixed PCI slots after the results disk and Disks), and
// Config.SharedDiscard passes the guests' discards through to them (qemu
// discard=unmap); Config.Initrds appends scripts/vm/cluster-deps.sh's archive (corosync,
// its libraries, virtio_net) after the base; Config.NetArgs plugs a
// virtio NIC into a Hub, a UDP relay on 127.0.0.1 that forwards every frame
// to the other nodes like an Ethernet hub and can cut one node off
// (Isolate) and heal the segment: no host networking, no root networking.
//
// The types shared with the guest (Report, Step, Golden, Options,
// BenchResults) live here too, so both sides agree on the command line and
// the results format; so does the benchmark's report (Markdown, and a PNG
// chart drawn with gonum.org/v1/plot through internal/testutil/chart).
package vmharness
