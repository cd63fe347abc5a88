// Package bitmap is the region bitmap of the dirty log: a fixed-size set of
// bits over caller-owned memory (the engine hands it a view of the log image
// it maps), with lock-sharded writers, lock-free readers, incremental counts,
// fast scans and tracking of which blocks of the backing image changed.
//
// The contract:
//
//   - Bit i is bit i%64 of word i/64: on a little-endian host, the kernel's
//     little-endian bit order, so a Bitmap runs directly over the clean-bit
//     area of a kernel disk log image. Bits at or beyond Len are never
//     counted, scanned or changed.
//   - Writers (Set, Clear, range operations, ReadBlock) take their shard's
//     mutex; readers (Test, Count, the scans) take no lock.
//   - Count is a sum of per-shard counts, never a popcount on the hot path.
//   - Assembly kernels (AVX2, VPOPCNTQ) and their pure-Go twins give equal
//     results; the twins run under Options.PureGo or the purego build tag.
//   - With changed-block tracking, a bit changed before TakeChanged is in
//     that flush's ReadBlock copy or in the next one, never in neither.
//
// Shards, their cache-line layout and the scan design: docs/design/bitmap.md.
package bitmap
