package syncbuf_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/dlog-dev/dlog/internal/testutil/syncbuf"
)

// Concurrent writers lose nothing and a reader may look at any time (run
// with -race).
func TestConcurrentWrites(t *testing.T) {
	var b syncbuf.Buffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				b.Write([]byte("x"))
				_ = b.String()
			}
		}()
	}
	wg.Wait()
	if got := b.String(); got != strings.Repeat("x", 800) {
		t.Fatalf("%d bytes, want 800", len(got))
	}
}
