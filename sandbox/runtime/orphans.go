package runtime

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Orphans of a runtime call that failed or was killed. berthd is a child subreaper,
// so when a runtime process dies before its children do (its context ended: a probe's
// exec over its timeout on a loaded node, a create killed half-way), the stages it
// had forked (runc's "runc:[1:CHILD]" and "runc:[2:INIT]") become berthd's children.
// Nothing waits for them, so once they exit they stay zombies, and a zombie in a
// container's pid namespace keeps the namespace's init from finishing its own exit
// (the kernel waits for every process of the namespace to be reaped): the container
// never exits and every stop of it times out. After each failed call a sweeper reaps
// them for a while.
//
// Only children whose command name is a runc stage are touched: berthd's other
// children (runtime processes os/exec waits for, monitors, exec'd processes that
// Exec waits for by pid) never carry one. A process renames itself to a stage only
// inside runc, before it executes the container's program.

const (
	sweepInterval = time.Second
	// sweepRounds sweeps follow each failed call: long enough for a killed runtime's
	// stages to notice and exit.
	sweepRounds = 60
)

var sweeper struct {
	mu     sync.Mutex
	rounds int // sweeps still due; 0 when no sweeper runs
}

// sweepOrphans makes sure a sweeper runs for the next sweepRounds intervals.
func sweepOrphans() {
	if !childSubreaper() {
		return
	}
	sweeper.mu.Lock()
	defer sweeper.mu.Unlock()
	idle := sweeper.rounds == 0
	sweeper.rounds = sweepRounds
	if idle {
		go sweepLoop()
	}
}

func sweepLoop() {
	for {
		reapOrphans()
		sweeper.mu.Lock()
		sweeper.rounds--
		done := sweeper.rounds <= 0
		if done {
			sweeper.rounds = 0
		}
		sweeper.mu.Unlock()
		if done {
			return
		}
		time.Sleep(sweepInterval)
	}
}

// reapOrphans reaps each child of this process that is a runc stage and has exited,
// and returns their pids.
func reapOrphans() []int {
	var reaped []int
	for _, pid := range childPids() {
		comm, state, ok := procStat(pid)
		if !ok || state != 'Z' || !isRuntimeStage(comm) {
			continue
		}
		var ws unix.WaitStatus
		if got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil); err == nil && got == pid {
			reaped = append(reaped, pid)
		}
	}
	return reaped
}

// isRuntimeStage reports whether comm is the name runc gives the processes it forks.
func isRuntimeStage(comm string) bool {
	return len(comm) > 6 && comm[:6] == "runc:["
}

// childPids lists the children of every thread of this process
// (/proc/self/task/*/children: an adopted orphan is the child of whichever thread the
// kernel picked).
func childPids() []int {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil
	}
	var pids []int
	for _, t := range tasks {
		b, err := os.ReadFile(filepath.Join("/proc/self/task", t.Name(), "children"))
		if err != nil {
			continue
		}
		for _, f := range bytes.Fields(b) {
			if pid, err := strconv.Atoi(string(f)); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// procStat returns the command name and state letter of pid from /proc/<pid>/stat,
// whose name field is in parentheses and may itself hold any character.
func procStat(pid int) (comm string, state byte, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", 0, false
	}
	return parseStat(b)
}

func parseStat(b []byte) (comm string, state byte, ok bool) {
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open || end+2 >= len(b) {
		return "", 0, false
	}
	return string(b[open+1 : end]), b[end+2], true
}
