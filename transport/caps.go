package transport

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
)

// capSysAdmin is CAP_SYS_ADMIN, the capability the kernel's connector
// callback demands of the sender of a reply (dm-log-userspace-transfer.c
// cn_ulog_callback; docs/protocol.md §1.1, §1.4 check 4).
const capSysAdmin = 21 // unix.CAP_SYS_ADMIN

// parseCapEff returns the effective capability set from the text of
// /proc/<pid>/status (the "CapEff:\t000001ffffffffff" line, hex).
func parseCapEff(status []byte) (uint64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		k, v, ok := bytes.Cut(sc.Bytes(), []byte(":"))
		if !ok || string(k) != "CapEff" {
			continue
		}
		v = bytes.TrimSpace(v)
		caps, err := strconv.ParseUint(string(v), 16, 64)
		if err != nil {
			return 0, fmt.Errorf("CapEff %q: %w", v, err)
		}
		return caps, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no CapEff line")
}

// hasCap reports whether capability bit c is in the set caps.
func hasCap(caps uint64, c uint) bool { return c < 64 && caps&(1<<c) != 0 }
