package systemd

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"sync"
)

// Syslog priorities of the levels dlog logs at.
const (
	prioErr     = 3
	prioWarning = 4
	prioInfo    = 6
	prioDebug   = 7
)

// Priority is the syslog priority of a slog level: error and above 3,
// warning 4, info 6, below info 7.
func Priority(l slog.Level) int {
	switch {
	case l >= slog.LevelError:
		return prioErr
	case l >= slog.LevelWarn:
		return prioWarning
	case l >= slog.LevelInfo:
		return prioInfo
	}
	return prioDebug
}

// handler writes text records, each prefixed with "<N>".
type handler struct {
	mu   *sync.Mutex
	w    io.Writer
	buf  *bytes.Buffer
	text slog.Handler // writes into buf
}

// NewHandler returns a slog.Handler for a journal stream: slog's text
// format without the time (the journal stamps each line), each record on
// one line prefixed with its priority. opts.ReplaceAttr, if any, still
// applies.
func NewHandler(w io.Writer, opts *slog.HandlerOptions) slog.Handler {
	o := slog.HandlerOptions{}
	if opts != nil {
		o = *opts
	}
	replace := o.ReplaceAttr
	o.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		if replace != nil {
			return replace(groups, a)
		}
		return a
	}
	buf := new(bytes.Buffer)
	return &handler{mu: new(sync.Mutex), w: w, buf: buf, text: slog.NewTextHandler(buf, &o)}
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.text.Enabled(ctx, l) }

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.buf.Reset()
	h.buf.WriteByte('<')
	h.buf.WriteByte(byte('0' + Priority(r.Level)))
	h.buf.WriteByte('>')
	if err := h.text.Handle(ctx, r); err != nil {
		return err
	}
	_, err := h.w.Write(h.buf.Bytes())
	return err
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	return &handler{mu: h.mu, w: h.w, buf: h.buf, text: h.text.WithAttrs(as)}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{mu: h.mu, w: h.w, buf: h.buf, text: h.text.WithGroup(name)}
}
