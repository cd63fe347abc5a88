package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// sig formats v with 3 significant digits, without exponent for the
// magnitudes a report shows.
// Trailing zeros are dropped ("32", not "32.0").
func sig(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	var s string
	switch a := math.Abs(v); {
	case a == 0:
		return "0"
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		s = strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		s = strconv.FormatFloat(v, 'f', 2, 64)
	default:
		s = strconv.FormatFloat(v, 'g', 3, 64)
	}
	if strings.Contains(s, ".") && !strings.Contains(s, "e") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// duration formats nanoseconds with a unit: "812 ns", "1.23 µs", "17.5 ms".
func duration(ns float64) string {
	switch a := math.Abs(ns); {
	case math.IsNaN(ns):
		return "–"
	case a >= 1e9:
		return sig(ns/1e9) + " s"
	case a >= 1e6:
		return sig(ns/1e6) + " ms"
	case a >= 1e3:
		return sig(ns/1e3) + " µs"
	}
	return sig(ns) + " ns"
}

// bytesIEC formats a byte count: "4 KiB", "32 MiB", "1.5 KiB".
func bytesIEC(b float64) string {
	if math.IsNaN(b) {
		return "–"
	}
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for math.Abs(b) >= 1024 && i < len(units)-1 {
		b /= 1024
		i++
	}
	return sig(b) + " " + units[i]
}

// rate formats a per-second figure: "812 k/s", "1.23 M/s".
func rate(v float64, unit string) string {
	switch a := math.Abs(v); {
	case math.IsNaN(v):
		return "–"
	case a >= 1e9:
		return sig(v/1e9) + " G" + unit
	case a >= 1e6:
		return sig(v/1e6) + " M" + unit
	case a >= 1e3:
		return sig(v/1e3) + " k" + unit
	}
	return sig(v) + " " + unit
}

// bandwidth formats MB/s (10^6 bytes per second) as "4.66 GB/s".
func bandwidth(mbs float64) string {
	if math.IsNaN(mbs) {
		return "–"
	}
	if math.Abs(mbs) >= 1000 {
		return sig(mbs/1000) + " GB/s"
	}
	return sig(mbs) + " MB/s"
}

// metric formats a value of a benchmark unit.
func metric(v float64, unit string) string {
	switch unit {
	case "ns/op":
		return duration(v)
	case "bytes/flush", "B/op":
		return bytesIEC(v)
	case "MB/s":
		return bandwidth(v)
	case "req/s":
		return rate(v, "req/s")
	}
	return sig(v) + " " + unit
}

// spread formats the min–max range of s in unit.
func spread(s summary, unit string) string {
	if !s.ok() {
		return "–"
	}
	return metric(s.Min, unit) + " – " + metric(s.Max, unit)
}

// ratioText formats a speed-up summary: "2.31× [2.10–2.52]".
func ratioText(s summary) string {
	if !s.ok() {
		return "–"
	}
	return fmt.Sprintf("%s× [%s–%s]", sig(s.Median), sig(s.Min), sig(s.Max))
}

// ratioWords says a speed-up summary in words, with its range over the
// rounds in the same sense: "150× faster (120–160)" (speed-ups), "takes
// 2.3× as long (2.1–2.6)" (time ratios); when the middle half of the
// rounds has the baseline both faster and slower, "no clear difference"
// and the speed-ups.
func ratioWords(s summary) string {
	switch {
	case !s.ok():
		return "–"
	case s.Q1 < 1 && s.Q3 > 1:
		return fmt.Sprintf("no clear difference: speed-up %s (%s–%s)", sig(s.Median), sig(s.Min), sig(s.Max))
	case s.Median >= 1:
		return fmt.Sprintf("%s× faster (%s–%s)", sig(s.Median), sig(s.Min), sig(s.Max))
	}
	return fmt.Sprintf("takes %s× as long (%s–%s)", sig(1/s.Median), sig(1/s.Max), sig(1/s.Min))
}
