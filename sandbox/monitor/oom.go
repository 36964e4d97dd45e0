package monitor

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
)

// oomKills returns N of the "oom_kill N" line that both cgroup v1's memory.oom_control
// and v2's memory.events carry; ok is false when there is no such line.
func oomKills(data []byte) (n uint64, ok bool) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		key, value, found := bytes.Cut(bytes.TrimSpace(sc.Bytes()), []byte(" "))
		if !found || string(key) != "oom_kill" {
			continue
		}
		n, err := strconv.ParseUint(string(bytes.TrimSpace(value)), 10, 64)
		return n, err == nil
	}
	return 0, false
}

// oomKilled reports whether the kernel's OOM killer killed a process of the container's
// cgroup. An unreadable file (no OOM detection configured, cgroup gone) means no.
func oomKilled(path string) bool {
	if path == "" {
		return false
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	n, ok := oomKills(data)
	return ok && n > 0
}
