package bitmap

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"sync"
	"sync/atomic"
	"unsafe"
)

// DefaultBlockSize is the shard and tracking unit when Options leaves it 0.
const DefaultBlockSize = 4096

// Options configure a Bitmap.
type Options struct {
	// Track turns on changed-block tracking (TakeChanged, ReadBlock).
	Track bool
	// BlockSize is the shard and tracking unit in bytes: a power of two of
	// at least 128. 0 means DefaultBlockSize.
	BlockSize int
	// BlockOffset is the byte offset of word 0 within the image the blocks
	// are counted in, a multiple of 8. The engine passes 1024, where the
	// kernel's disk log puts its clean bits.
	BlockOffset int
	// PureGo forces the pure-Go scan kernels.
	PureGo bool
}

// shard is one block's worth of words. Its fields sit alone on a 128-byte
// line so that writers in different shards share nothing.
type shard struct {
	mu      sync.Mutex
	count   atomic.Int64  // set bits in [lo, hi) below Len
	changed atomic.Uint32 // 1 when a bit changed since the last TakeChanged
	lo, hi  int           // word range
	full    int64         // how many bits of the shard are below Len
	_       [128 - 8 - 8 - 4 - 4 - 16 - 8]byte
}

// Bitmap is a fixed-size bit set. All methods are safe for concurrent use.
type Bitmap struct {
	words  []uint64
	n      uint64
	shards []shard
	// shard index of word w is (base + w) >> shift, where base is the
	// offset of word 0 within its first block, in words.
	base  int
	shift uint
	block int // block size in bytes
	first int // image block index of shard 0
	off   int // BlockOffset
	track bool
	k     kernels
}

// New returns a Bitmap of n bits over words. The bitmap does not own words
// and never reallocates them; their current contents are counted once.
func New(words []uint64, n uint64, opts Options) (*Bitmap, error) {
	if uint64(len(words)) < (n+63)/64 {
		return nil, fmt.Errorf("%w: %d words for %d bits", ErrSize, len(words), n)
	}
	bs := opts.BlockSize
	if bs == 0 {
		bs = DefaultBlockSize
	}
	if bs < 128 || bs&(bs-1) != 0 || opts.BlockOffset < 0 || opts.BlockOffset%8 != 0 {
		return nil, fmt.Errorf("%w: block size %d, offset %d", ErrLayout, bs, opts.BlockOffset)
	}
	b := &Bitmap{
		words: words,
		n:     n,
		block: bs,
		shift: uint(bits.TrailingZeros(uint(bs / 8))),
		first: opts.BlockOffset / bs,
		base:  opts.BlockOffset % bs / 8,
		off:   opts.BlockOffset,
		track: opts.Track,
		k:     selectKernels(opts.PureGo),
	}
	used := int((n + 63) / 64)
	nshards := 1
	if used > 0 {
		nshards = (b.base+used-1)>>b.shift + 1
	}
	b.shards = make([]shard, nshards)
	for i := range b.shards {
		s := &b.shards[i]
		s.lo = max(0, i<<b.shift-b.base)
		s.hi = min(used, (i+1)<<b.shift-b.base)
		lo, hi := uint64(s.lo)*64, min(uint64(s.hi)*64, n)
		if hi > lo {
			s.full = int64(hi - lo)
		}
		s.count.Store(int64(b.countRange(s.lo, s.hi)))
	}
	return b, nil
}

// Words returns b viewed as 64-bit words, without copying. b must be 8-byte
// aligned with a length that is a multiple of 8; the caller keeps b alive.
func Words(b []byte) ([]uint64, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if len(b)%8 != 0 || uintptr(unsafe.Pointer(&b[0]))%8 != 0 {
		return nil, ErrAlign
	}
	return unsafe.Slice((*uint64)(unsafe.Pointer(&b[0])), len(b)/8), nil
}

// Len is the number of bits.
func (b *Bitmap) Len() uint64 { return b.n }

// Kernel names the scan implementation in use ("avx2+avx512", "go", ...).
func (b *Bitmap) Kernel() string { return b.k.name }

func (b *Bitmap) shardOf(w int) *shard { return &b.shards[(b.base+w)>>b.shift] }

// Test reports whether bit i is set. It never blocks. Bits at or beyond Len
// read as clear.
func (b *Bitmap) Test(i uint64) bool {
	if i >= b.n {
		return false
	}
	return atomic.LoadUint64(&b.words[i/64])&(1<<(i%64)) != 0
}

// Set sets bit i and reports whether it changed. Bits at or beyond Len are
// left alone (false).
func (b *Bitmap) Set(i uint64) bool {
	if i >= b.n {
		return false
	}
	w, m := &b.words[i/64], uint64(1)<<(i%64)
	if atomic.LoadUint64(w)&m != 0 {
		return false
	}
	s := b.shardOf(int(i / 64))
	s.mu.Lock()
	old := atomic.LoadUint64(w)
	changed := old&m == 0
	if changed {
		atomic.StoreUint64(w, old|m)
		s.count.Add(1)
		s.changed.Store(1)
	}
	s.mu.Unlock()
	return changed
}

// Clear clears bit i and reports whether it changed. Bits at or beyond Len
// are left alone (false).
func (b *Bitmap) Clear(i uint64) bool {
	if i >= b.n {
		return false
	}
	w, m := &b.words[i/64], uint64(1)<<(i%64)
	if atomic.LoadUint64(w)&m == 0 {
		return false
	}
	s := b.shardOf(int(i / 64))
	s.mu.Lock()
	old := atomic.LoadUint64(w)
	changed := old&m != 0
	if changed {
		atomic.StoreUint64(w, old&^m)
		s.count.Add(-1)
		s.changed.Store(1)
	}
	s.mu.Unlock()
	return changed
}

// SetRange sets bits [lo, hi), clamped to Len.
func (b *Bitmap) SetRange(lo, hi uint64) { b.fill(lo, hi, true) }

// ClearRange clears bits [lo, hi), clamped to Len.
func (b *Bitmap) ClearRange(lo, hi uint64) { b.fill(lo, hi, false) }

// ClearTail clears the bits from Len up to the end of its word: the stale
// bits a shrunken log leaves behind (the kernel's disk_resume does this up
// to the next multiple of 64). They are outside every count and scan; this
// only matters for the image written to disk.
func (b *Bitmap) ClearTail() {
	if b.n%64 == 0 {
		return
	}
	wi := int(b.n / 64)
	if wi >= len(b.words) {
		return
	}
	m := ^uint64(0) << (b.n % 64)
	s := b.shardOf(wi)
	s.mu.Lock()
	if old := atomic.LoadUint64(&b.words[wi]); old&m != 0 {
		atomic.StoreUint64(&b.words[wi], old&^m)
		s.changed.Store(1)
	}
	s.mu.Unlock()
}

func (b *Bitmap) fill(lo, hi uint64, set bool) {
	hi = min(hi, b.n)
	for lo < hi {
		wi := int(lo / 64)
		s := b.shardOf(wi)
		s.mu.Lock()
		for lo < hi && wi < s.hi {
			n := min(64-lo%64, hi-lo)
			m := (^uint64(0) >> (64 - n)) << (lo % 64)
			old := atomic.LoadUint64(&b.words[wi])
			nw := old | m
			if !set {
				nw = old &^ m
			}
			if nw != old {
				atomic.StoreUint64(&b.words[wi], nw)
				d := int64(bits.OnesCount64(nw&m)) - int64(bits.OnesCount64(old&m))
				s.count.Add(d)
				s.changed.Store(1)
			}
			lo += n
			wi++
		}
		s.mu.Unlock()
	}
}

// Count is the number of set bits below Len, from the shard counts.
func (b *Bitmap) Count() uint64 {
	var c int64
	for i := range b.shards {
		c += b.shards[i].count.Load()
	}
	return uint64(c)
}

// Recount counts the set bits below Len from the words themselves, with the
// selected popcount kernel. It is for verification and for bitmaps whose
// memory was changed behind the Bitmap's back (it also resets the counts).
func (b *Bitmap) Recount() uint64 {
	var c uint64
	for i := range b.shards {
		s := &b.shards[i]
		s.mu.Lock()
		n := b.countRange(s.lo, s.hi)
		s.count.Store(int64(n))
		s.mu.Unlock()
		c += n
	}
	return c
}

// countRange popcounts words [lo, hi), masking bits at or beyond Len.
func (b *Bitmap) countRange(lo, hi int) uint64 {
	if hi <= lo {
		return 0
	}
	last := hi
	if uint64(hi)*64 > b.n {
		last = hi - 1
	}
	c := uint64(b.k.popcount(b.words[lo:last]))
	if last < hi {
		c += uint64(bits.OnesCount64(atomic.LoadUint64(&b.words[last]) & (1<<(b.n%64) - 1)))
	}
	return c
}

// NextSet returns the first set bit at or after from, and false when there
// is none below Len.
func (b *Bitmap) NextSet(from uint64) (uint64, bool) { return b.next(from, 0) }

// NextClear returns the first clear bit at or after from, and false when
// there is none below Len.
func (b *Bitmap) NextClear(from uint64) (uint64, bool) { return b.next(from, ^uint64(0)) }

// next finds the first bit at or after from whose value differs from the
// bits of pattern (0: find a set bit; all ones: find a clear bit).
func (b *Bitmap) next(from uint64, pattern uint64) (uint64, bool) {
	if from >= b.n {
		return 0, false
	}
	used := int((b.n + 63) / 64)
	wi := int(from / 64)
	// The first, partial word.
	if x := (atomic.LoadUint64(&b.words[wi]) ^ pattern) >> (from % 64); x != 0 {
		return b.found(from + uint64(bits.TrailingZeros64(x)))
	}
	wi++
	for wi < used {
		s := b.shardOf(wi)
		// Skip a shard the summary says has nothing for us.
		if c := s.count.Load(); (pattern == 0 && c == 0) || (pattern != 0 && c == s.full) {
			wi = s.hi
			continue
		}
		j := wi + b.k.find(b.words[wi:s.hi], pattern)
		if j < s.hi {
			x := atomic.LoadUint64(&b.words[j]) ^ pattern
			if x != 0 {
				return b.found(uint64(j)*64 + uint64(bits.TrailingZeros64(x)))
			}
			// The word changed under us; look again from it.
			wi = j
			continue
		}
		wi = s.hi
	}
	return 0, false
}

func (b *Bitmap) found(i uint64) (uint64, bool) {
	if i >= b.n {
		return 0, false
	}
	return i, true
}

// Tracking reports whether changed-block tracking is on.
func (b *Bitmap) Tracking() bool { return b.track }

// BlockSize is the shard and tracking unit in bytes.
func (b *Bitmap) BlockSize() int { return b.block }

// TakeChanged appends to dst the image block numbers whose bits changed
// since the previous call, in increasing order, and forgets them. Without
// tracking it returns dst unchanged.
func (b *Bitmap) TakeChanged(dst []int) []int {
	if !b.track {
		return dst
	}
	for i := range b.shards {
		s := &b.shards[i]
		if s.changed.Load() != 0 && s.changed.Swap(0) != 0 {
			dst = append(dst, b.first+i)
		}
	}
	return dst
}

// Changed reports whether any block changed since the last TakeChanged.
func (b *Bitmap) Changed() bool {
	for i := range b.shards {
		if b.shards[i].changed.Load() != 0 {
			return true
		}
	}
	return false
}

// MarkAllChanged flags every block as changed, so the next TakeChanged
// returns all of them.
func (b *Bitmap) MarkAllChanged() {
	for i := range b.shards {
		b.shards[i].changed.Store(1)
	}
}

// ReadBlock copies, little-endian, the words that fall in image block blk
// into dst, which stands for the whole block (dst[0] is image byte
// blk*BlockSize). Bytes of dst outside the words are left as they are: the
// caller owns the rest of the image. The copy is taken under the shard's
// lock, so it is a consistent snapshot of that shard.
func (b *Bitmap) ReadBlock(blk int, dst []byte) {
	i := blk - b.first
	if i < 0 || i >= len(b.shards) {
		return
	}
	s := &b.shards[i]
	start := blk * b.block // image offset of dst[0]
	s.mu.Lock()
	for w := s.lo; w < s.hi && w < len(b.words); w++ {
		at := b.off + w*8 - start
		if at+8 > len(dst) {
			break
		}
		binary.LittleEndian.PutUint64(dst[at:], atomic.LoadUint64(&b.words[w]))
	}
	s.mu.Unlock()
}

// BlockRange returns the image blocks [first, last] that hold bitmap words.
func (b *Bitmap) BlockRange() (first, last int) {
	return b.first, b.first + len(b.shards) - 1
}

// A shard must fill exactly one 128-byte line pair: this fails to compile
// when it does not.
var _ = [1]struct{}{}[unsafe.Sizeof(shard{})-128]

// MarkBlockChanged flags image block blk as changed, so the next
// TakeChanged returns it again (a flush whose write of it failed).
func (b *Bitmap) MarkBlockChanged(blk int) {
	if i := blk - b.first; i >= 0 && i < len(b.shards) {
		b.shards[i].changed.Store(1)
	}
}

// CopyFrom makes b's bits below Len equal to src's, which must have the
// same Len, and recounts. It flags every block of b as changed.
func (b *Bitmap) CopyFrom(src *Bitmap) error {
	if src.n != b.n {
		return fmt.Errorf("%w: copy of %d bits into %d", ErrSize, src.n, b.n)
	}
	for i := range b.shards {
		s := &b.shards[i]
		s.mu.Lock()
		for w := s.lo; w < s.hi; w++ {
			atomic.StoreUint64(&b.words[w], atomic.LoadUint64(&src.words[w]))
		}
		s.count.Store(int64(b.countRange(s.lo, s.hi)))
		s.changed.Store(1)
		s.mu.Unlock()
	}
	return nil
}
