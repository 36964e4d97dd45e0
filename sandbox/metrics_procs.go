package sandbox

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// procCounts are what a container's processes hold, from /proc.
type procCounts struct {
	processes, threads, fds, sockets uint64
	nofileSoft                       uint64 // of the first process; 0 when unreadable
}

// readProcCounts counts the processes listed in procsFile (a cgroup.procs) and their
// threads, open files and sockets under procRoot (/proc). A process that exits midway
// is simply not counted.
func readProcCounts(procRoot, procsFile string) procCounts {
	var c procCounts
	f, err := os.Open(procsFile)
	if err != nil {
		return c
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pid := strings.TrimSpace(sc.Text())
		if pid == "" {
			continue
		}
		dir := filepath.Join(procRoot, pid)
		tasks, err := os.ReadDir(filepath.Join(dir, "task"))
		if err != nil {
			continue // exited since the cgroup listed it
		}
		if c.processes == 0 {
			c.nofileSoft = readNofileSoft(filepath.Join(dir, "limits"))
		}
		c.processes++
		c.threads += uint64(len(tasks))
		fds, err := os.ReadDir(filepath.Join(dir, "fd"))
		if err != nil {
			continue
		}
		c.fds += uint64(len(fds))
		for _, fd := range fds {
			if l, err := os.Readlink(filepath.Join(dir, "fd", fd.Name())); err == nil && strings.HasPrefix(l, "socket:") {
				c.sockets++
			}
		}
	}
	return c
}

// readNofileSoft reads the soft "Max open files" of a /proc/<pid>/limits file.
func readNofileSoft(path string) uint64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "Max open files"); ok {
			if fl := strings.Fields(rest); len(fl) > 0 {
				if v, err := strconv.ParseUint(fl[0], 10, 64); err == nil {
					return v
				}
				return 0
			}
		}
	}
	return 0
}
