package engine

import (
	"fmt"
	"os"

	"github.com/edsrzf/mmap-go"

	"github.com/dlog-dev/dlog/bitmap"
	"github.com/dlog-dev/dlog/header"
)

// pageSize is the mapping granularity.
var pageSize = os.Getpagesize()

// mapping is anonymous, page-aligned memory outside the Go heap, made with
// mmap-go. Every bitmap and the disk image live in one: page alignment is
// what O_DIRECT wants, the GC never scans or moves it, and it can be locked
// in memory as a whole.
type mapping struct {
	m mmap.MMap
}

// mapAnon maps n bytes (rounded up to a page, at least one page) of zeroed
// private anonymous memory.
func mapAnon(n int) (mapping, error) {
	n = max(pageSize, (n+pageSize-1)/pageSize*pageSize)
	m, err := mmap.MapRegion(nil, n, mmap.RDWR, mmap.ANON, 0)
	if err != nil {
		return mapping{}, fmt.Errorf("engine: map %d bytes of anonymous memory: %w", n, err)
	}
	return mapping{m: m}, nil
}

func (m *mapping) unmap() error {
	if m.m == nil {
		return nil
	}
	err := m.m.Unmap()
	m.m = nil
	return err
}

// bitmapOver returns a Bitmap of n bits over mem, which must be 8-byte
// aligned and hold BitsetSize(n) bytes, setting every bit first if fill.
func bitmapOver(mem []byte, n uint64, fill, pureGo bool) (*bitmap.Bitmap, error) {
	size := int(header.BitsetSize(n))
	words, err := bitmap.Words(mem[:max(size, 8)])
	if err != nil {
		return nil, fmt.Errorf("engine: bitmap memory: %w", err)
	}
	if fill {
		for i := range words {
			words[i] = ^uint64(0)
		}
	}
	b, err := bitmap.New(words, n, bitmap.Options{PureGo: pureGo})
	if err != nil {
		return nil, fmt.Errorf("engine: bitmap: %w", err)
	}
	return b, nil
}
