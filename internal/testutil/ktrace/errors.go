package ktrace

import "errors"

// ErrSyntax is returned (wrapped, with the line number) by Parse for a
// line it cannot parse or that contradicts itself or its neighbours.
var ErrSyntax = errors.New("kernel trace syntax error")

// ErrKind is returned by Entry methods called on an entry of the wrong kind.
var ErrKind = errors.New("wrong entry kind")
