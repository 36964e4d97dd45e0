package oomscore

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
)

// capSysResource is the number of CAP_SYS_RESOURCE (linux/capability.h).
const capSysResource = 24

// Clamp returns the oom_score_adj to ask for in place of want: want itself when this
// process may lower scores (it has CAP_SYS_RESOURCE, or its capabilities are
// unknown), else the larger of want and this process's own score. Its own score is read
// each time (it may be changed from outside); the capabilities once.
func Clamp(want int) int {
	restricted, err := lacksSysResource()
	if err != nil || !restricted {
		return want
	}
	own, err := ownScore()
	if err != nil {
		return want
	}
	return max(want, own)
}

// RestrictionReason is a sentence for berthd's start-up log when Clamp changes
// scores, and "" when it does not.
func RestrictionReason() string {
	restricted, err := lacksSysResource()
	if err != nil {
		return fmt.Sprintf("cannot tell whether oom_score_adj can be lowered: %v", err)
	}
	if !restricted {
		return ""
	}
	own, err := ownScore()
	if err != nil {
		return fmt.Sprintf("no CAP_SYS_RESOURCE, and own oom_score_adj unreadable: %v", err)
	}
	return fmt.Sprintf("no CAP_SYS_RESOURCE: containers' oom_score_adj is raised to berthd's own (%d) where it would be lower", own)
}

// lacksSysResource reports, once per process, whether CAP_SYS_RESOURCE is missing from
// the effective set.
var lacksSysResource = sync.OnceValues(func() (bool, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return false, err
	}
	defer f.Close()
	eff, err := parseCapEff(f)
	if err != nil {
		return false, err
	}
	return !hasCap(eff, capSysResource), nil
})

// parseCapEff reads the effective capability mask (the CapEff line, in hex) of a
// /proc/<pid>/status file.
func parseCapEff(r io.Reader) (uint64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		value, ok := strings.CutPrefix(sc.Text(), "CapEff:")
		if !ok {
			continue
		}
		mask, err := strconv.ParseUint(strings.TrimSpace(value), 16, 64)
		if err != nil {
			return 0, fmt.Errorf("CapEff: %w", err)
		}
		return mask, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no CapEff line")
}

func hasCap(mask uint64, capability uint) bool { return mask&(1<<capability) != 0 }

// ownScore reads this process's oom_score_adj.
func ownScore() (int, error) {
	data, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(data)))
}
