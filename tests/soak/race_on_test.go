//go:build linux && race

package main

// raceEnabled: the tests run under the race detector, and so does the
// dlogd they build.
const raceEnabled = true
