//go:build linux

package main

import (
	"context"
	"os/exec"
	"strings"
	"time"

	"github.com/dlog-dev/dlog/dm"
)

// liveUUIDs lists the uuids of the userspace logs that the kernel's
// device-mapper tables (active and inactive) name, by asking dmsetup. It
// reports ok=false when it cannot tell (no dmsetup, no device-mapper).
func liveUUIDs() (map[string]bool, bool) {
	live := map[string]bool{}
	for _, args := range [][]string{{"table"}, {"table", "--inactive"}} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := exec.CommandContext(ctx, "dmsetup", args...).Output()
		cancel()
		if err != nil {
			return nil, false
		}
		for _, uuid := range userspaceLogUUIDs(string(out)) {
			live[uuid] = true
		}
	}
	return live, true
}

// userspaceLogUUIDs finds "userspace <#args> <uuid>" in dmsetup table
// output: the uuid of every userspace dirty log.
func userspaceLogUUIDs(table string) []string {
	var uuids []string
	for _, line := range strings.Split(table, "\n") {
		f := strings.Fields(line)
		for i := 0; i+2 < len(f); i++ {
			if f[i] == "userspace" {
				uuids = append(uuids, f[i+2])
			}
		}
	}
	return uuids
}

// mirrorName is the device-mapper name of the mirror whose userspace log
// has this uuid, from the kernel's tables; "" when none names it (yet) or
// device-mapper cannot be asked. It labels the log's metrics.
func mirrorName(uuid string) string {
	c, err := dm.Open()
	if err != nil {
		return ""
	}
	defer c.Close()
	name, _, err := c.FindMirror(uuid)
	if err != nil {
		return ""
	}
	return name
}
