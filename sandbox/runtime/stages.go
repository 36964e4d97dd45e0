package runtime

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// runc starts a container process through three stages of `runc init` (named
// runc:[0:PARENT], runc:[1:CHILD] and runc:[2:INIT] in /proc/<pid>/comm). The first
// two exit once the third runs. When the second fails (an exec into a container whose
// init is exiting cannot open its namespaces), the first exits without reaping it, and
// with runc gone too its zombie goes to the nearest child subreaper. berthd is one (so
// that pause and detached exec'd processes become its children): kubelet's exec probes
// into such a container left one zombie each, 3800 in half an hour of node
// conformance, on a machine whose pid_max is 32768.
//
// Only these stages are reaped here: berthd never starts a process under such a name,
// so none of them is a child that os/exec or the pod code waits for by its pid (a
// wait4(-1) would steal those exit statuses). The third stage is left alone: it
// becomes the container's process (pause among them), whose exit is waited for by pid.
var stagePrefixes = []string{"runc:[0:", "runc:[1:"}

// ReapStages reaps the zombies of runtime init stages that are children of this
// process, and returns how many it reaped.
func ReapStages() int {
	reaped := 0
	for _, pid := range zombieChildren() {
		if !isStage(pid) {
			continue
		}
		var ws unix.WaitStatus
		// WNOHANG: a zombie is ready to be reaped; if another waiter took it first,
		// ECHILD just means there is nothing left to do.
		if got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil); err == nil && got == pid {
			reaped++
		}
	}
	return reaped
}

// WatchStages reaps runtime init stages whenever a child of this process changes state,
// until ctx ends. It is for a child subreaper (berthd).
func WatchStages(ctx context.Context, log *slog.Logger) {
	sigs := make(chan os.Signal, 1) // one pending signal stands for any number of exits
	signal.Notify(sigs, unix.SIGCHLD)
	defer signal.Stop(sigs)
	for {
		select {
		case <-ctx.Done():
			return
		case <-sigs:
			if n := ReapStages(); n > 0 && log != nil {
				log.Debug("reaped runtime init stages", "count", n)
			}
		}
	}
}

// zombieChildren lists this process's children (of every thread: an adopted orphan
// hangs under whichever thread the kernel picked) that are zombies.
func zombieChildren() []int {
	lists, _ := filepath.Glob("/proc/self/task/*/children")
	var pids []int
	for _, list := range lists {
		b, err := os.ReadFile(list)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			pid, err := strconv.Atoi(f)
			if err == nil && procState(pid) == 'Z' {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// procState is the state letter of /proc/<pid>/stat, or 0 when it cannot be read.
func procState(pid int) byte {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// "pid (comm) S ...": comm may hold spaces and parentheses; the state follows the
	// last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0
	}
	return b[i+2]
}

func isStage(pid int) bool {
	comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return false
	}
	for _, p := range stagePrefixes {
		if strings.HasPrefix(string(comm), p) {
			return true
		}
	}
	return false
}
