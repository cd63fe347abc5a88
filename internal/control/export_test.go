package control

import "time"

// SetIOTimeout shortens the server's read and write deadline for a test.
func SetIOTimeout(s *Server, d time.Duration) { s.ioTimeout = d }
