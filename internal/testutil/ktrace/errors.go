package ktrace

import "errors"

// ErrSyntax is returned (wrapped, with the line number) by Parse for a
// line it cannot parse or that contradicts itself or its neighbours.
var ErrSyntax = errors.New("kernel trace syntax error")

// ErrNotFound is returned by Path when kernel-trace.txt cannot be located.
var ErrNotFound = errors.New("kernel trace not found")

// ErrKind is returned by Entry methods called on an entry of the wrong kind.
var ErrKind = errors.New("wrong entry kind")
