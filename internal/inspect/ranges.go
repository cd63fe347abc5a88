package inspect

import (
	"strconv"
	"strings"
)

// Range is an inclusive run of regions [First, Last].
type Range struct {
	First, Last uint64
}

// Len is the number of regions in r.
func (r Range) Len() uint64 { return r.Last - r.First + 1 }

// String formats r as "First-Last", or "First" for a single region.
func (r Range) String() string {
	if r.First == r.Last {
		return strconv.FormatUint(r.First, 10)
	}
	return strconv.FormatUint(r.First, 10) + "-" + strconv.FormatUint(r.Last, 10)
}

// MarshalJSON encodes r as [First, Last].
func (r Range) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 24)
	b = append(b, '[')
	b = strconv.AppendUint(b, r.First, 10)
	b = append(b, ',')
	b = strconv.AppendUint(b, r.Last, 10)
	return append(b, ']'), nil
}

// FormatRanges formats ranges as "0-4, 9, 100-127" ("" for none).
func FormatRanges(rs []Range) string {
	var sb strings.Builder
	for i, r := range rs {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(r.String())
	}
	return sb.String()
}

// rangeSet collects dirty runs as the scan finds them, keeping the first
// max (all when max is 0).
type rangeSet struct {
	max   int
	kept  []Range
	count uint64
	open  bool
	start uint64
}

// begin opens a run at region i.
func (s *rangeSet) begin(i uint64) {
	s.open, s.start = true, i
}

// end closes the open run at region i (inclusive).
func (s *rangeSet) end(i uint64) {
	s.open = false
	s.count++
	if s.max == 0 || len(s.kept) < s.max {
		s.kept = append(s.kept, Range{s.start, i})
	}
}
