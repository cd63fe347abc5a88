//go:build !linux

package systemd

import "os"

// OnJournal is false: the journal is Linux's.
func OnJournal(*os.File, string) bool { return false }

// Notify does nothing: the service manager is Linux's.
func Notify(string, string) error { return nil }
