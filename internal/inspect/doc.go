// Package inspect reads a kernel "disk" dirty log image (package header
// describes the format) without writing it: the logic behind
// `dlogd inspect`.
//
// Read takes any io.ReaderAt and the image's size, checks the header the
// way the kernel's resume would (magic, version) and against the size
// (the header's nr_regions must fit in the bytes that follow the
// 1024-byte header area), then walks the clean bits in chunks, counting
// clean and dirty regions, collecting the dirty ranges (up to a limit)
// and the dirty count of every heat-map cell, with a progress callback
// between chunks. Memory stays bounded by the chunk, the range limit and
// the cell count, whatever the size of the log (up to 2^32-1 regions, a
// 512 MiB bitmap).
//
// The region count is the header's nr_regions: bits past it (the tail of
// the last 64-bit word, or stale bits of a log that shrank, which the
// kernel leaves in place) are not regions and are not counted.
//
// Open (Linux) opens a log device or image file the way the disk log names
// it (a path, a block device or major:minor) read-only with O_DIRECT where
// the filesystem allows it, so the bits read are the device's and not a
// stale page cache. RenderHeatMap draws the dirty regions as a PNG-ready
// image with an in-picture legend, its text set in golang.org/x/image/font/basicfont.
package inspect
