// Package poll waits, in tests, for a condition that something running on
// its own goroutines (a daemon, a cluster member, a child process) makes
// true: it checks the condition every few milliseconds and fails the test
// when it does not hold in time.
package poll

import (
	"testing"
	"time"
)

// Until calls cond every interval until it returns true. When it still
// returns false after within, Until fails the test with "timed out waiting
// for what" (after one last call, so a slow machine does not fail a test
// whose condition came true during the last sleep).
func Until(t testing.TB, what string, within, interval time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(interval)
	}
}
