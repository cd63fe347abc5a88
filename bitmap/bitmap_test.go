package bitmap_test

import (
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/dlog-dev/dlog/bitmap"
)

// forEachKernel runs fn once per kernel set (pure Go, and assembly where the
// CPU has it).
func forEachKernel(t *testing.T, fn func(t *testing.T, pureGo bool)) {
	for _, name := range bitmap.AvailableKernels() {
		t.Run("kernel="+name, func(t *testing.T) { fn(t, name == "go") })
	}
}

// parallel runs fn in n goroutines, goroutine g with its own generator
// seeded (g, seed), and returns when they all have.
func parallel(n int, seed uint64, fn func(rng *rand.Rand)) {
	var wg sync.WaitGroup
	for g := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(rand.New(rand.NewPCG(uint64(g), seed)))
		}()
	}
	wg.Wait()
}

// model is the obviously-correct twin a Bitmap is checked against.
type model []bool

func (m model) nextSet(from uint64, want bool) (uint64, bool) {
	for i := from; i < uint64(len(m)); i++ {
		if m[i] == want {
			return i, true
		}
	}
	return 0, false
}

func (m model) count() uint64 {
	var c uint64
	for _, v := range m {
		if v {
			c++
		}
	}
	return c
}

func TestAgainstModel(t *testing.T) {
	forEachKernel(t, func(t *testing.T, pureGo bool) {
		rng := rand.New(rand.NewPCG(7, 8))
		for _, n := range []uint64{1, 63, 64, 65, 1000, 4096*8 - 1, 4096 * 8, 4096*8*3 + 17, 200000} {
			for _, opts := range []bitmap.Options{
				{PureGo: pureGo},
				{PureGo: pureGo, Track: true, BlockOffset: 1024},
				{PureGo: pureGo, Track: true, BlockSize: 128, BlockOffset: 8},
			} {
				words := make([]uint64, (n+63)/64+1) // one spare word: never touched
				words[len(words)-1] = 0xdeadbeef
				b, err := bitmap.New(words[:len(words)-1], n, opts)
				if err != nil {
					t.Fatal(err)
				}
				m := make(model, n)
				for op := 0; op < 3000; op++ {
					i := rng.Uint64N(n)
					switch rng.IntN(8) {
					case 0, 1:
						if got, want := b.Set(i), !m[i]; got != want {
							t.Fatalf("n=%d Set(%d) = %v, want %v", n, i, got, want)
						}
						m[i] = true
					case 2, 3:
						if got, want := b.Clear(i), m[i]; got != want {
							t.Fatalf("n=%d Clear(%d) = %v, want %v", n, i, got, want)
						}
						m[i] = false
					case 4:
						hi := i + rng.Uint64N(300)
						set := rng.IntN(2) == 0
						if set {
							b.SetRange(i, hi)
						} else {
							b.ClearRange(i, hi)
						}
						for j := i; j < min(hi, n); j++ {
							m[j] = set
						}
					case 5:
						gi, gok := b.NextSet(i)
						wi, wok := m.nextSet(i, true)
						if gi != wi || gok != wok {
							t.Fatalf("n=%d NextSet(%d) = %d,%v want %d,%v", n, i, gi, gok, wi, wok)
						}
					case 6:
						gi, gok := b.NextClear(i)
						wi, wok := m.nextSet(i, false)
						if gi != wi || gok != wok {
							t.Fatalf("n=%d NextClear(%d) = %d,%v want %d,%v", n, i, gi, gok, wi, wok)
						}
					case 7:
						if got := b.Test(i); got != m[i] {
							t.Fatalf("n=%d Test(%d) = %v want %v", n, i, got, m[i])
						}
					}
					if op%500 == 0 {
						if got, want := b.Count(), m.count(); got != want {
							t.Fatalf("n=%d Count = %d, want %d", n, got, want)
						}
					}
				}
				if got, want := b.Count(), m.count(); got != want {
					t.Fatalf("n=%d final Count = %d, want %d", n, got, want)
				}
				if got, want := b.Recount(), m.count(); got != want {
					t.Fatalf("n=%d Recount = %d, want %d", n, got, want)
				}
				if words[len(words)-1] != 0xdeadbeef {
					t.Fatalf("n=%d: word past the bitmap was written", n)
				}
				// Nothing beyond Len is ever set.
				if n%64 != 0 && words[n/64]>>(n%64) != 0 {
					t.Fatalf("n=%d: bits beyond Len set: %#x", n, words[n/64])
				}
			}
		}
	})
}

// Bits beyond Len that are already set in the memory (a shrunken log) are
// outside every count and scan, and ClearTail removes them.
func TestBitsBeyondLen(t *testing.T) {
	forEachKernel(t, func(t *testing.T, pureGo bool) {
		words := []uint64{^uint64(0), ^uint64(0)}
		b, err := bitmap.New(words, 70, bitmap.Options{PureGo: pureGo, Track: true})
		if err != nil {
			t.Fatal(err)
		}
		if got := b.Count(); got != 70 {
			t.Fatalf("Count = %d, want 70", got)
		}
		if _, ok := b.NextClear(0); ok {
			t.Fatal("NextClear found a clear bit in a full bitmap")
		}
		b.Clear(69)
		if i, ok := b.NextClear(0); !ok || i != 69 {
			t.Fatalf("NextClear = %d,%v want 69,true", i, ok)
		}
		if b.Set(70) || b.Clear(100) || b.Test(70) {
			t.Fatal("operation beyond Len had an effect")
		}
		b.TakeChanged(nil)
		b.ClearTail()
		if words[1] != 1<<5-1 {
			t.Fatalf("ClearTail left %#x, want %#x", words[1], uint64(1<<5-1))
		}
		if got := b.TakeChanged(nil); !slices.Equal(got, []int{0}) {
			t.Fatalf("ClearTail changed blocks %v, want [0]", got)
		}
		if got := b.Recount(); got != 69 {
			t.Fatalf("Recount = %d, want 69", got)
		}
	})
}

func TestNewErrors(t *testing.T) {
	if _, err := bitmap.New(make([]uint64, 1), 65, bitmap.Options{}); !errors.Is(err, bitmap.ErrSize) {
		t.Errorf("short words: err = %v", err)
	}
	for _, o := range []bitmap.Options{{BlockSize: 64}, {BlockSize: 1000}, {BlockOffset: 4}, {BlockOffset: -8}} {
		if _, err := bitmap.New(make([]uint64, 2), 64, o); !errors.Is(err, bitmap.ErrLayout) {
			t.Errorf("%+v: err = %v", o, err)
		}
	}
	if b, err := bitmap.New(nil, 0, bitmap.Options{}); err != nil || b.Count() != 0 {
		t.Errorf("empty bitmap: %v", err)
	} else if _, ok := b.NextSet(0); ok {
		t.Error("empty bitmap NextSet found something")
	}
}

func TestWords(t *testing.T) {
	buf := make([]uint64, 4)
	raw := bytesView(buf)
	w, err := bitmap.Words(raw)
	if err != nil || len(w) != 4 {
		t.Fatalf("Words = %d, %v", len(w), err)
	}
	w[1] = 1 << 9 // bit 73: byte 9, bit 1, little-endian bit order
	if raw[9] != 2 {
		t.Fatalf("bit 73 is not bit 1 of byte 9: % x", raw[:16])
	}
	if _, err := bitmap.Words(raw[1:9]); !errors.Is(err, bitmap.ErrAlign) {
		t.Errorf("misaligned: err = %v", err)
	}
	if _, err := bitmap.Words(raw[:7]); !errors.Is(err, bitmap.ErrAlign) {
		t.Errorf("odd length: err = %v", err)
	}
}

// TestTracking lays a bitmap 1024 bytes into an image of 4 KiB blocks, as
// the engine does, and checks that exactly the touched blocks are reported
// and that ReadBlock reproduces the image bytes.
func TestTracking(t *testing.T) {
	const n = 3*32768 + 1000 // spans blocks 0..3 of the image
	image := make([]uint64, 4*512+128)
	words := image[128 : 128+(n+63)/64] // 1024 bytes in
	b, err := bitmap.New(words, n, bitmap.Options{Track: true, BlockOffset: 1024})
	if err != nil {
		t.Fatal(err)
	}
	if first, last := b.BlockRange(); first != 0 || last != 3 {
		t.Fatalf("BlockRange = %d..%d, want 0..3", first, last)
	}
	if got := b.TakeChanged(nil); len(got) != 0 {
		t.Fatalf("fresh bitmap reports changes %v", got)
	}
	// Region 24575 is the last bit of block 0 (1024 + 24575/8 = 4095);
	// 24576 is the first of block 1; 3*32768+999 the last region.
	for _, i := range []uint64{24575, 24576, 3*32768 + 999} {
		b.Set(i)
	}
	b.Set(24575) // no change, no new report
	if got := b.TakeChanged(nil); !slices.Equal(got, []int{0, 1, 3}) {
		t.Fatalf("TakeChanged = %v, want [0 1 3]", got)
	}
	if got := b.TakeChanged(nil); len(got) != 0 {
		t.Fatalf("second TakeChanged = %v, want none", got)
	}
	b.Clear(24576)
	b.Set(24577)
	if got := b.TakeChanged(nil); !slices.Equal(got, []int{1}) {
		t.Fatalf("TakeChanged = %v, want [1]", got)
	}
	imageBytes := bytesView(image)
	for blk := 0; blk < 4; blk++ {
		dst := make([]byte, 4096)
		for i := range dst {
			dst[i] = 0xEE
		}
		b.ReadBlock(blk, dst)
		for i := range dst {
			at := blk*4096 + i
			inWords := at >= 1024 && at < 1024+len(words)*8
			switch {
			case inWords && dst[i] != imageBytes[at]:
				t.Fatalf("block %d byte %d = %#x, image has %#x", blk, i, dst[i], imageBytes[at])
			case !inWords && dst[i] != 0xEE:
				t.Fatalf("block %d byte %d outside the bitmap was written", blk, i)
			}
		}
	}
	// Bit 24575 is bit 7 of image byte 4095.
	dst := make([]byte, 4096)
	b.ReadBlock(0, dst)
	if dst[4095] != 0x80 {
		t.Fatalf("image byte 4095 = %#x, want 0x80", dst[4095])
	}
	b.MarkAllChanged()
	if got := b.TakeChanged(nil); !slices.Equal(got, []int{0, 1, 2, 3}) {
		t.Fatalf("after MarkAllChanged: %v", got)
	}
}

// TestTrackingNeverMissesAMark runs markers against a flusher. A marker
// notes the flush generation that had started before its Set returned; the
// bit must be in the copy of the first flush that starts after that.
func TestTrackingNeverMissesAMark(t *testing.T) {
	const n = 8 * 32768
	words := make([]uint64, n/64)
	b, err := bitmap.New(words, n, bitmap.Options{Track: true, BlockOffset: 1024})
	if err != nil {
		t.Fatal(err)
	}
	// disk is the flushed image, block by block.
	disk := make([][]byte, 9)
	for i := range disk {
		disk[i] = make([]byte, 4096)
	}
	var mu sync.Mutex
	stop := make(chan struct{})
	type ack struct {
		region uint64
		gen    int
	}
	acks := make(chan ack, 1<<16)
	gen := 0 // flushes completed, under mu
	var flushMu sync.Mutex
	flush := func() {
		flushMu.Lock()
		defer flushMu.Unlock()
		for _, blk := range b.TakeChanged(nil) {
			b.ReadBlock(blk, disk[blk])
		}
		mu.Lock()
		gen++
		mu.Unlock()
	}
	flushed := make(chan struct{})
	go func() {
		defer close(flushed)
		for {
			select {
			case <-stop:
				return
			default:
				flush()
			}
		}
	}()
	parallel(2, 9, func(rng *rand.Rand) {
		for k := 0; k < 3000; k++ {
			r := rng.Uint64N(n)
			b.Set(r)
			// A flush that starts after this point must carry r.
			mu.Lock()
			after := gen
			mu.Unlock()
			acks <- ack{r, after}
		}
	})
	close(stop)
	<-flushed
	flush()
	flush() // both start after every Set returned
	close(acks)
	for a := range acks {
		byteAt := 1024 + a.region/8
		if disk[byteAt/4096][byteAt%4096]&(1<<(a.region%8)) == 0 {
			t.Fatalf("region %d set before flush %d is missing from the flushed image", a.region, a.gen+1)
		}
	}
}

func TestConcurrentCounts(t *testing.T) {
	forEachKernel(t, func(t *testing.T, pureGo bool) {
		const n = 1 << 18
		b, err := bitmap.New(make([]uint64, n/64), n, bitmap.Options{PureGo: pureGo, Track: true})
		if err != nil {
			t.Fatal(err)
		}
		parallel(4, 1, func(rng *rand.Rand) {
			for k := 0; k < 20000; k++ {
				i := rng.Uint64N(n)
				if k%3 == 0 {
					b.Clear(i)
				} else {
					b.Set(i)
				}
				if k%1000 == 0 {
					b.NextSet(i)
					b.NextClear(i)
					b.Count()
				}
			}
		})
		if c, r := b.Count(), b.Recount(); c != r {
			t.Fatalf("Count %d != Recount %d after concurrent updates", c, r)
		}
	})
}

func TestZeroAllocs(t *testing.T) {
	b, err := bitmap.New(make([]uint64, 1024), 65536, bitmap.Options{Track: true, BlockOffset: 1024})
	if err != nil {
		t.Fatal(err)
	}
	i := uint64(0)
	if a := testing.AllocsPerRun(1000, func() {
		i = (i + 7919) % 65536
		b.Set(i)
		b.Test(i)
		b.Clear(i)
		b.NextSet(i)
		b.Count()
	}); a != 0 {
		t.Fatalf("%v allocations per Set+Test+Clear+NextSet+Count, want 0", a)
	}
}
