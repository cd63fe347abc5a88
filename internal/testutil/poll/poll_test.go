package poll_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/dlog-dev/dlog/internal/testutil/poll"
)

// A condition made true by another goroutine ends the wait.
func TestUntilHolds(t *testing.T) {
	var done atomic.Bool
	go func() {
		time.Sleep(20 * time.Millisecond)
		done.Store(true)
	}()
	poll.Until(t, "the flag", 5*time.Second, time.Millisecond, done.Load)
	if !done.Load() {
		t.Fatal("Until returned before the condition held")
	}
}

// recorder is a testing.TB that records Fatalf instead of ending the test.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = format
	panic(r)
}

// A condition that never holds fails the test once within has passed.
func TestUntilTimesOut(t *testing.T) {
	r := &recorder{TB: t}
	start := time.Now()
	func() {
		defer func() {
			if p := recover(); p != nil && p != r {
				panic(p)
			}
		}()
		poll.Until(r, "nothing", 30*time.Millisecond, time.Millisecond, func() bool { return false })
	}()
	if r.failed == "" {
		t.Fatal("Until returned on a condition that never held")
	}
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Fatalf("failed after %v, before within (30ms)", d)
	}
}
