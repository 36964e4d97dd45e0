package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The processes a run directory's daemons started, found from that directory alone,
// so that a later test binary can stop what a killed one left:
//
//   - every process with an argument inside the directory: the daemons (--root, --state,
//     --listen), their monitors (berth-monitor <dir>) and the OCI runtimes they run;
//   - every container and pause the runtimes created, named by the runtime's own
//     state.json (pid and start time) under the daemons' state directories;
//   - every descendant of those.
//
// A process is named by pid and start time (field 22 of /proc/<pid>/stat) and signalled
// through a pidfd taken after the start time was checked: a pid reused since is never
// signalled.

// proc is one process: pid and start time in clock ticks since boot.
type proc struct {
	pid   int
	start uint64
}

// procStat reads the parent pid and start time of pid from /proc/<pid>/stat.
func procStat(pid int) (ppid int, start uint64, err error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// The command name (field 2) may hold blanks and parentheses: fields count from
	// the last ')'. After it: state (3), ppid (4), ... starttime (22).
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 20 {
		return 0, 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	if ppid, err = strconv.Atoi(f[1]); err != nil {
		return 0, 0, err
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	return ppid, start, err
}

// allProcs lists every process's parent and start time.
func allProcs() map[int]struct {
	ppid  int
	start uint64
} {
	out := map[int]struct {
		ppid  int
		start uint64
	}{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ppid, start, err := procStat(pid)
		if err != nil {
			continue
		}
		out[pid] = struct {
			ppid  int
			start uint64
		}{ppid, start}
	}
	return out
}

// mentionsDir says whether one of pid's arguments lies inside dir.
func mentionsDir(pid int, dir string) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	for _, arg := range bytes.Split(data, []byte{0}) {
		if bytes.Contains(arg, []byte(dir+"/")) {
			return true
		}
	}
	return false
}

// runtimeInits lists the init processes the OCI runtimes recorded under dir (a run
// directory or one daemon's): every <daemon dir>/state/runtime/<handler>/<container>/
// state.json (runc's and crun's format: init_process_pid, init_process_start).
func runtimeInits(dir string) []proc {
	files, _ := filepath.Glob(filepath.Join(dir, "*", "state", "runtime", "*", "*", "state.json"))
	own, _ := filepath.Glob(filepath.Join(dir, "state", "runtime", "*", "*", "state.json"))
	files = append(files, own...)
	var out []proc
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var st struct {
			Pid   int    `json:"init_process_pid"`
			Start uint64 `json:"init_process_start"`
		}
		if json.Unmarshal(data, &st) == nil && st.Pid > 0 {
			out = append(out, proc{st.Pid, st.Start})
		}
	}
	return out
}

// dirProcs lists the processes dir's daemons started (see above), never this process.
func dirProcs(dir string) []proc {
	procs := allProcs()
	found := map[int]bool{}
	for pid := range procs {
		if pid != os.Getpid() && mentionsDir(pid, dir) {
			found[pid] = true
		}
	}
	for _, p := range runtimeInits(dir) {
		if cur, ok := procs[p.pid]; ok && (p.start == 0 || cur.start == p.start) {
			found[p.pid] = true
		}
	}
	// Descendants: until no process is added.
	for added := true; added; {
		added = false
		for pid, p := range procs {
			if !found[pid] && found[p.ppid] {
				found[pid], added = true, true
			}
		}
	}
	out := make([]proc, 0, len(found))
	for pid := range found {
		out = append(out, proc{pid, procs[pid].start})
	}
	return out
}

// killProc sends SIGKILL to p if it is still the process that was listed.
func killProc(p proc) {
	fd, err := unix.PidfdOpen(p.pid, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	if _, start, err := procStat(p.pid); err != nil || start != p.start {
		return
	}
	_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
}

// stopDirProcs kills the processes dir's daemons started, again until none is left
// (a daemon may start one between the listing and its own end), for at most 10 s.
// It returns how many it killed.
func stopDirProcs(dir string) int {
	killed := map[proc]bool{}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		procs := dirProcs(dir)
		live := 0
		for _, p := range procs {
			if alive(p.pid) {
				live++
				killed[p] = true
				killProc(p)
			}
		}
		if live == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return len(killed)
}
