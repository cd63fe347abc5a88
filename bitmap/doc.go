// Package bitmap is the region bitmap of the dirty log: a fixed-size set of
// bits over caller-owned memory (the engine hands it a view of the log image
// it maps), with lock-sharded writers, lock-free readers, incremental counts,
// fast scans and tracking of which blocks of the backing image changed.
//
// # Bits and words
//
// Bit i lives in word i/64 at bit position i%64. On a little-endian host this
// is exactly the kernel's little-endian bit order (test_bit_le: bit i%8 of
// byte i/8), so a Bitmap can run directly over the clean-bit area of a kernel
// "disk" log image. Bits at or beyond Len are never counted, scanned or
// changed.
//
// # Shards
//
// The words are cut into shards. A shard covers the words of one block of
// the backing image (Options.BlockSize bytes, 4 KiB by default, so 32768
// regions), and its boundaries therefore fall on multiples of at least 128
// bytes of the image. Each shard owns a mutex, a count of its set bits and a
// changed flag, all on their own 128-byte line, so two goroutines working in
// different shards never write the same cache line (platform.md §6 measured
// a 3.5x slowdown when they do).
//
// Writers (Set, Clear, the range operations, block reads for a flush) take
// the shard's mutex; they first load the word and return at once when the
// bit is already in the wanted state, which is the common case for a dirty
// log that re-marks hot regions. Readers (Test, Count, the scans) never take
// a lock: they use atomic loads, so an IN_SYNC or IS_CLEAN answer never waits
// behind a writer, let alone behind disk I/O.
//
// # Counts and scans
//
// Each shard's count changes with its bits, so Count is a sum over shards and
// never a popcount on the hot path. The counts double as a summary: NextSet
// skips shards whose count is zero and NextClear skips full shards, which
// makes scans of sparse bitmaps proportional to the shards that matter.
// Within a shard, scans and Recount use kernels chosen per Bitmap at New from
// the CPU's features (klauspost/cpuid/v2): AVX2 for finding the first word
// that differs from a pattern, AVX-512 VPOPCNTQ or POPCNT for population
// counts. The pure-Go twins in scan_go.go are always compiled, are used when
// the CPU lacks a feature, when Options.PureGo is set or under the purego
// build tag, and are proven equal to the assembly by tests and FuzzScan.
//
// # Changed-block tracking
//
// With tracking on, the words are taken to start Options.BlockOffset bytes
// into an image cut into Options.BlockSize blocks (the engine uses offset
// 1024 and 4 KiB blocks). Every bit that changes sets its shard's changed
// flag after the word is written. A flush calls TakeChanged, which swaps each
// flag out (the flush's list is the second buffer), then ReadBlock copies
// each block into the flush's own staging memory under the shard lock; marks
// go on setting bits and flags while the flush writes. Because the flag is
// set after the bit and swapped out before the copy, a bit changed before a
// TakeChanged is always in that flush's copy or in the next one.
package bitmap
