package ktrace

import (
	"bytes"
	"compress/gzip"
	_ "embed" // the trace is compiled into the test binaries that use it
	"fmt"
	"io"
	"testing"
)

// traceGz is testdata/kernel-trace.txt.gz: the capture, gzip-compressed.
// It is part of the repository, so a test that needs it never has to look
// for it (and cannot run without it: a missing file fails the build).
//
//go:embed testdata/kernel-trace.txt.gz
var traceGz []byte

// Text returns the uncompressed text of the trace.
func Text() ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(traceGz))
	if err != nil {
		return nil, fmt.Errorf("ktrace: testdata/kernel-trace.txt.gz: %w", err)
	}
	defer zr.Close()
	b, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("ktrace: testdata/kernel-trace.txt.gz: %w", err)
	}
	return b, nil
}

// Entries parses the trace.
func Entries() ([]Entry, error) {
	b, err := Text()
	if err != nil {
		return nil, err
	}
	entries, err := Parse(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("ktrace: testdata/kernel-trace.txt.gz: %w", err)
	}
	return entries, nil
}

// Load parses the trace for a test and fails the test if it cannot: it
// never skips.
func Load(t testing.TB) []Entry {
	t.Helper()
	entries, err := Entries()
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

// LoadExchanges parses the trace and pairs its requests with their
// replies (Exchanges) for a test, and fails the test if it cannot.
func LoadExchanges(t testing.TB) ([]Entry, []Exchange) {
	t.Helper()
	entries := Load(t)
	ex, err := Exchanges(entries)
	if err != nil {
		t.Fatal(err)
	}
	return entries, ex
}
