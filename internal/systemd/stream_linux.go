//go:build linux

package systemd

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// OnJournal reports whether f is the journal stream systemd connected
// this service to: JOURNAL_STREAM (journal is its value) names f's device
// and inode. A redirected stderr (dlogd run by hand from a unit's shell,
// a pipe to a file) keeps the variable but not the stream, and is plain
// text.
func OnJournal(f *os.File, journal string) bool {
	if journal == "" {
		return false
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return journal == fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}
