package infra

import (
	"bytes"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// pidNS identifies a PID namespace: the device and inode of a /proc/<pid>/ns/pid.
type pidNS struct{ dev, ino uint64 }

// pidNamespaceOf is the PID namespace of pid.
func pidNamespaceOf(pid int) (pidNS, bool) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/"+strconv.Itoa(pid)+"/ns/pid", &st); err != nil {
		return pidNS{}, false
	}
	return pidNS{dev: st.Dev, ino: st.Ino}, true
}

// reapOrphansIn reaps the exited children of this process (berthd, a child
// subreaper) that belong to PID namespace ns, a pod's whose pause has been killed. A
// process the OCI runtime started in the pod and left an orphan, such as an exec'd
// process of a runtime killed half-way, is berthd's child; dead and not reaped, it
// keeps the namespace's init from exiting, and with it StopPodSandbox. The pod is
// going: nobody else waits for these.
func reapOrphansIn(ns pidNS) {
	self := strconv.Itoa(os.Getpid())
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(data, ')')
		if i < 0 {
			continue
		}
		f := bytes.Fields(data[i+1:]) // state, ppid, ...
		if len(f) < 2 || string(f[0]) != "Z" || string(f[1]) != self {
			continue
		}
		// An unreaped child's pid is ours to name: it cannot have been reused.
		if in, ok := pidNamespaceOf(pid); ok && in == ns {
			var ws unix.WaitStatus
			_, _ = unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		}
	}
}
