package runtime

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// How long an exec may take to start its process (the runtime writes the pid file, or
// with --detach exits, once the process runs) before the runtime counts as stuck. The
// caller's deadline does not cut a start short: under emulation or heavy load starting
// a process can take longer than a 1 s ExecSync timeout, and a runtime killed half-way
// leaves what it already started (the process, or the runtime init about to become
// it) an orphan that nobody kills or reaps. It is a variable for the tests.
var execStartLimit = time.Minute

// treeReapWait bounds how long the killed descendants of a runtime are waited for.
const treeReapWait = 10 * time.Second

// procTree ends a stuck runtime call with everything it started: its init processes
// and the container process it may already have exec'd (runc's last init stage
// starts a session of its own, so a process group would not hold it). Killing the
// runtime alone orphans them; as berthd is a child subreaper they become its children,
// and a zombie nobody reaps in a pod's PID namespace keeps that namespace's init
// (pause) from ever exiting.
type procTree struct {
	mu      sync.Mutex
	root    int
	members []int
}

// kill stops the runtime process p (so that it starts nothing more), SIGKILLs its
// descendants until a scan of /proc finds no new one (a killed process forks no
// more), then p itself, and notes the descendants for reap. Signals to p go through
// its pidfd: once the caller has reaped it, they do nothing.
func (t *procTree) kill(p *os.Process) {
	if err := p.Signal(unix.SIGSTOP); err != nil {
		return // reaped: what it left is no longer its descendants to find
	}
	killed := map[int]bool{}
	for {
		fresh := 0
		for _, pid := range descendants(p.Pid) {
			if !killed[pid] {
				killed[pid] = true
				fresh++
				_ = unix.Kill(pid, unix.SIGKILL)
			}
		}
		if fresh == 0 {
			break
		}
	}
	_ = p.Kill()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.root = p.Pid
	for pid := range killed {
		t.members = append(t.members, pid)
	}
}

// reap waits for the killed descendants that are this process's children, or become
// them as their dying parents exit, so that none stays a zombie. Those that are, or
// end up as, anyone else's children are left to them. A nil t reaps nothing.
func (t *procTree) reap() {
	if t == nil {
		return
	}
	t.mu.Lock()
	root, pending := t.root, t.members
	t.members = nil
	t.mu.Unlock()
	self := os.Getpid()
	deadline := time.Now().Add(treeReapWait)
	for len(pending) > 0 {
		var left []int
		for _, pid := range pending {
			var ws unix.WaitStatus
			n, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
			switch {
			case n == pid:
				// reaped
			case errors.Is(err, unix.ECHILD):
				// Not our child (yet): keep waiting while its parent is the root or
				// another killed process, which is dying and hands it to us.
				if ppid, ok := parentOf(pid); ok && ppid != self && (ppid == root || contains(pending, ppid)) {
					left = append(left, pid)
				}
			default: // running still, or EINTR
				left = append(left, pid)
			}
		}
		pending = left
		if len(pending) == 0 || time.Now().After(deadline) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// killChild kills and reaps pid if it is this process's child: an exec'd process
// the runtime started and wrote to its pid file before it was killed, orphaned to
// berthd. An unreaped child's pid cannot have been reused.
func killChild(pid int) {
	if ppid, ok := parentOf(pid); !ok || ppid != os.Getpid() {
		return
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
	deadline := time.Now().Add(treeReapWait)
	for time.Now().Before(deadline) {
		var ws unix.WaitStatus
		if n, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil); n == pid || errors.Is(err, unix.ECHILD) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func contains(pids []int, pid int) bool {
	for _, p := range pids {
		if p == pid {
			return true
		}
	}
	return false
}

// descendants lists the live descendants of root, from /proc.
func descendants(root int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if fields := statFields(pid); len(fields) > 1 && fields[0] != "Z" {
			if ppid, err := strconv.Atoi(fields[1]); err == nil {
				children[ppid] = append(children[ppid], pid)
			}
		}
	}
	var out []int
	queue := children[root]
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		out = append(out, pid)
		queue = append(queue, children[pid]...)
	}
	return out
}

// parentOf is the parent pid of pid from /proc, false when pid is gone.
func parentOf(pid int) (int, bool) {
	fields := statFields(pid)
	if len(fields) < 2 {
		return 0, false
	}
	ppid, err := strconv.Atoi(fields[1])
	return ppid, err == nil
}

// statFields are the fields of /proc/<pid>/stat after the command name: state, ppid,
// pgrp, ... (the name, in parentheses, may hold spaces and parentheses itself).
func statFields(pid int) []string {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return nil
	}
	var fields []string
	for _, f := range bytes.Fields(data[i+1:]) {
		fields = append(fields, string(f))
	}
	return fields
}
