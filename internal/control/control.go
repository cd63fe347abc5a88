// Package control is dlogd's local control socket: `dlogd status` asks a
// running daemon for its state through it. One request per connection: the
// client writes a command line ("status\n") and reads one JSON document
// until the server closes the connection.
//
// The socket is a unix SOCK_STREAM socket created with mode 0600, and every
// peer is checked with SO_PEERCRED: only root and the daemon's own user are
// answered, as for the unix transport.
package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// ErrInUse is returned by Listen when a live process listens on the path.
var ErrInUse = errors.New("control socket in use by another process")

// Handler answers one command with a value to encode as JSON.
type Handler func(ctx context.Context, cmd string) (any, error)

// Response is the JSON document a client reads.
type Response struct {
	Result json.RawMessage `json:"result,omitempty"`
	Error  string          `json:"error,omitempty"`
}

// Server is a listening control socket.
type Server struct {
	l   *net.UnixListener
	log *slog.Logger
	wg  sync.WaitGroup
	// ioTimeout bounds reading the command line and, afresh, writing the
	// answer; the handler's own time is not bounded by it.
	ioTimeout time.Duration
}

// Listen creates the control socket at path (mode 0600). A socket file left
// by a dead daemon is replaced; one a live process answers on is not.
func Listen(path string, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.Default()
	}
	if _, err := os.Lstat(path); err == nil {
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("control: %s: %w", path, ErrInUse)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("control: remove stale socket %s: %w", path, err)
		}
	}
	old := unix.Umask(0o177)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	unix.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("control: listen %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("control: chmod %s: %w", path, err)
	}
	l.SetUnlinkOnClose(true)
	return &Server{l: l, log: log, ioTimeout: 10 * time.Second}, nil
}

// Serve answers connections until ctx is done or Close is called.
func (s *Server) Serve(ctx context.Context, h Handler) error {
	stop := context.AfterFunc(ctx, func() { s.l.Close() })
	defer stop()
	for {
		c, err := s.l.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
				s.wg.Wait()
				return nil
			}
			return fmt.Errorf("control: accept: %w", err)
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveConn(ctx, c, h)
		}()
	}
}

func (s *Server) serveConn(ctx context.Context, c *net.UnixConn, h Handler) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(s.ioTimeout))
	if uid, pid, ok := peer(c); !ok || (uid != 0 && uid != uint32(os.Geteuid())) {
		s.log.Warn("control: refused a peer that is neither root nor our user", "uid", uid, "pid", pid)
		return
	}
	line, err := bufio.NewReader(io.LimitReader(c, 4096)).ReadString('\n')
	if err != nil && line == "" {
		return
	}
	// A command may take longer than the read deadline (profile runs for
	// as long as it was asked to, bounded by its handler): the deadline
	// covers the command line and, afresh, the answer.
	c.SetDeadline(time.Time{})
	var resp Response
	v, err := h(ctx, strings.TrimSpace(line))
	c.SetDeadline(time.Now().Add(s.ioTimeout))
	if err == nil {
		resp.Result, err = json.Marshal(v)
	}
	if err != nil {
		resp.Error = err.Error()
	}
	json.NewEncoder(c).Encode(resp)
}

// peer returns the connected process's uid and pid from SO_PEERCRED.
func peer(c *net.UnixConn) (uid uint32, pid int32, ok bool) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, 0, false
	}
	var cred *unix.Ucred
	var cerr error
	if err := rc.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil || cerr != nil {
		return 0, 0, false
	}
	return cred.Uid, cred.Pid, true
}

// Close stops the server and removes the socket file.
func (s *Server) Close() error {
	err := s.l.Close()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// Query sends cmd to the daemon listening at path and returns the result.
func Query(ctx context.Context, path, cmd string) (json.RawMessage, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("control: connect to %s (is dlogd running? see --control): %w", path, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if _, err := io.WriteString(c, cmd+"\n"); err != nil {
		return nil, fmt.Errorf("control: send %q: %w", cmd, err)
	}
	var resp Response
	if err := json.NewDecoder(c).Decode(&resp); err != nil {
		return nil, fmt.Errorf("control: read the answer to %q (was the connection refused? only root and dlogd's user may ask): %w", cmd, err)
	}
	if resp.Error != "" {
		return nil, fmt.Errorf("control: %s: %s", cmd, resp.Error)
	}
	return resp.Result, nil
}
