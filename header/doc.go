// Package header encodes and decodes the on-disk image of the Linux kernel's
// "disk" dirty region log (drivers/md/dm-log.c), the format dlog shares with
// the kernel so that a log written by either is resumed by the other.
//
// # Layout
//
// The image starts at byte 0 of the log device and is read and written as one
// unit of [0, BufSize) bytes, rounded up to the device's logical block size:
//
//	offset  size  field
//	     0     4  magic       le32 0x4D695272 ("MiRr" read big-endian; bytes 72 52 69 4D)
//	     4     4  version     le32 2 (1 is accepted and upgraded on little-endian hosts)
//	     8     8  nr_regions  le64 number of regions the bitmap describes
//	    16  1008  (unused)    preserved as read
//	  1024     n  clean bits  bit i of the region bitmap is bit i%8 of byte 1024+i/8;
//	                          1 = clean (in sync), 0 = dirty (may differ between legs)
//
// n, the bitset size, is the region count rounded up to a multiple of 64 bits
// (the kernel's BITS_PER_LONG on 64-bit hosts), in bytes. There is no
// checksum, no UUID and no region size in the image: a log is identified by
// the device it lives on.
//
// # Resume rules
//
// Interpret applies the kernel's read_header and disk_resume decisions to a
// freshly read image: a wrong magic, or a constructor given "sync" or
// "nosync", means a fresh log (nr_regions 0); version 1 is upgraded; any
// other version fails the device. The stored nr_regions is clamped to the
// region count of this activation, so a corrupt header can never drive a loop
// over bits that were not read.
//
// The package is pure: it performs no I/O and holds no state.
package header
