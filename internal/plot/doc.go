// Package plot draws dlog's pictures with the standard library alone: the
// heat map of `dlogd inspect --png` and the charts of the benchmark report
// (bench/cmd/benchreport). It holds a tiny bitmap font of its own (5x7
// glyphs for printable ASCII, font.go), drawing primitives over an
// *image.RGBA (canvas.go), and minimal line and bar charts with axes, tick
// labels, error bars and a legend (chart.go). Pictures are written as PNG.
//
// It is deliberately small: fixed layouts, integer font scaling, no
// anti-aliasing. Everything is deterministic, so tests can check pixels.
package plot
