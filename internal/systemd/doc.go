// Package systemd holds the two small pieces of the systemd protocols
// dlogd speaks, without a library: the journal's stderr stream, and the
// service manager's notify socket.
//
// Journal: when systemd starts a service with its standard error
// connected to the journal, it sets JOURNAL_STREAM to "DEV:INODE" of that
// stream. OnJournal reports whether a file is that stream, and
// NewHandler then writes each log record on one line that begins with its
// syslog priority, "<3>" (error), "<4>" (warning), "<6>" (info) or "<7>"
// (debug), which journald strips and records as PRIORITY= (the stream's
// level_prefix, on by default); the time is left to the journal. Anywhere
// else dlogd logs plain text.
//
// Notify: with Type=notify, systemd waits for "READY=1" on the datagram
// socket named by NOTIFY_SOCKET (a path, or "@name" in the abstract
// namespace) before it considers the service started and starts the
// units ordered after it. Notify sends such a state; without
// NOTIFY_SOCKET it does nothing.
package systemd
