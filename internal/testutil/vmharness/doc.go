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
// The types shared with the guest (Report, Step, Golden, Options,
// BenchResults) live here too, so both sides agree on the command line and
// the results format; so does the benchmark's report (Markdown, and a PNG
// chart drawn with gonum.org/v1/plot through internal/testutil/chart).
package vmharness
