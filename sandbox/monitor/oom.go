package monitor

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"

	"golang.org/x/sys/unix"
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

// oomWatch follows a container's OOM kill count while the container runs. Under the
// systemd driver, systemd removes the container's scope, memory.events with it, as soon
// as the scope's last process has exited, which is before the monitor looks; the watch
// keeps the last count the kernel reported. cgroup v2 signals every change of
// memory.events as a file modification (inotify IN_MODIFY); v1's memory.oom_control
// signals nothing, but v1 cgroups outlive their processes and are read at the exit.
type oomWatch struct {
	path  string
	f     *os.File // inotify instance; nil when the file cannot be watched
	seen  atomic.Uint64
	ended chan struct{}

	// The parent cgroup's memory.events (v2 only; its counts include the
	// container's) and its OOM kill count before the container ran: when systemd
	// removed the scope between the kill and the monitor's read, the parent, which
	// outlives it, still tells.
	parent     string
	parentBase uint64
	parentOK   bool
}

// watchOOM starts following path ("" watches nothing).
func watchOOM(path string) *oomWatch {
	w := &oomWatch{path: path, ended: make(chan struct{})}
	if path == "" {
		close(w.ended)
		return w
	}
	if filepath.Base(path) == "memory.events" {
		w.parent = filepath.Join(filepath.Dir(filepath.Dir(path)), "memory.events")
		if data, err := os.ReadFile(w.parent); err == nil {
			w.parentBase, w.parentOK = oomKills(data)
		}
	}
	w.refresh()
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err == nil {
		if _, err = unix.InotifyAddWatch(fd, path, unix.IN_MODIFY); err != nil {
			unix.Close(fd)
		}
	}
	if err != nil {
		close(w.ended)
		return w
	}
	// A non-blocking descriptor in an *os.File waits in Go's poller, so Close ends a
	// pending Read.
	w.f = os.NewFile(uintptr(fd), "inotify")
	go w.follow()
	return w
}

func (w *oomWatch) follow() {
	defer close(w.ended)
	buf := make([]byte, 4096)
	for {
		if _, err := w.f.Read(buf); err != nil {
			return // closed by killed, or the watch is gone
		}
		w.refresh()
	}
}

// refresh records the file's count if it is readable and larger than the last one.
func (w *oomWatch) refresh() {
	data, err := os.ReadFile(w.path)
	if err != nil {
		return
	}
	if n, ok := oomKills(data); ok {
		for {
			old := w.seen.Load()
			if n <= old || w.seen.CompareAndSwap(old, n) {
				return
			}
		}
	}
}

// killed stops the watch and reports whether the kernel's OOM killer killed a process
// of the container's cgroup: the count in the file if it is still there, else the
// last count seen; for an init that died of SIGKILL (sigkilled) whose file went
// before a kill could be read, the parent's count (killedInParent).
func (w *oomWatch) killed(sigkilled bool) bool {
	if w.path == "" {
		return false
	}
	w.refresh()
	if w.f != nil {
		w.f.Close()
	}
	<-w.ended
	if w.seen.Load() > 0 {
		return true
	}
	return sigkilled && w.killedInParent()
}

// killedInParent reports whether the parent cgroup counted an OOM kill since the
// watch began while the container's own memory.events is gone: for a container
// SIGKILLed right after its start under the systemd driver, whose scope systemd
// removed before the inotify event could be read. Another container of the same pod
// killed by the OOM killer at the same time would count too, hence only for an init
// that died of SIGKILL.
func (w *oomWatch) killedInParent() bool {
	if !w.parentOK {
		return false
	}
	if _, err := os.Stat(w.path); err == nil {
		return false // the container's own count is there and said no
	}
	data, err := os.ReadFile(w.parent)
	if err != nil {
		return false
	}
	n, ok := oomKills(data)
	return ok && n > w.parentBase
}
