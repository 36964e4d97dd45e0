package integration

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Every test binary keeps what it makes below one run directory of its own,
// <tmp>/berth-it-run-*: the berthd it builds (bin/) and every daemon's root, state and
// socket (d-*/). The file named ownerFile in it names the test binary (pid and start
// time). The processes the daemons start are found from that directory (dirProcs) and
// stopped when the binary ends, on SIGINT and SIGTERM, and just before -timeout
// panics; a run directory whose owner is gone (a binary killed with SIGKILL) is swept
// by the next binary's TestMain. Directories without the marker, or whose owner still
// runs (another binary testing at the same time), are never touched.
const (
	runDirPrefix = "berth-it-run-"
	ownerFile    = "owner"
)

// runDir is this binary's run directory.
var runDir string

// makeRunDir makes this binary's run directory and its owner marker.
func makeRunDir() (string, error) {
	dir, err := os.MkdirTemp("", runDirPrefix)
	if err != nil {
		return "", err
	}
	// As berthd makes its own directories: the root of a user-namespaced pod, no one
	// on the host, must be able to pass through to its root filesystem.
	if err := os.Chmod(dir, 0o711); err != nil {
		return "", err
	}
	_, start, err := procStat(os.Getpid())
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, ownerFile), fmt.Appendf(nil, "%d %d\n", os.Getpid(), start), 0o600)
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

// ownerAlive says whether the binary named in dir's owner marker still runs; false
// with ok false when dir has no marker (not a run directory, or one being made).
func ownerAlive(dir string) (alive, ok bool) {
	data, err := os.ReadFile(filepath.Join(dir, ownerFile))
	if err != nil {
		return false, false
	}
	var pid int
	var start uint64
	if _, err := fmt.Sscanf(string(data), "%d %d", &pid, &start); err != nil {
		return false, false
	}
	_, cur, err := procStat(pid)
	return err == nil && cur == start, true
}

// sweepStaleRunDirs stops the processes of, and removes, every run directory whose
// owner is gone.
func sweepStaleRunDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), runDirPrefix+"*"))
	for _, dir := range dirs {
		if alive, ok := ownerAlive(dir); alive || !ok {
			continue
		}
		ids := runIDs(dir)
		n := stopDirProcs(dir)
		fmt.Printf("integration: swept %s, left by a test binary that was killed (%d process(es) stopped)\n", dir, n)
		removeIDCgroups(ids)
		removeRunDir(dir)
	}
}

// removeRunDir unmounts what the daemons left mounted below dir (deepest first) and
// removes it. Nothing is removed while a mount stays: RemoveAll would go into it.
func removeRunDir(dir string) {
	mounts, _ := mountPointsUnder(dir)
	for _, m := range mounts {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
			fmt.Printf("integration: unmount %s: %v\n", m, err)
		}
	}
	if left, _ := mountPointsUnder(dir); len(left) > 0 {
		fmt.Printf("integration: %s kept: still mounted: %s\n", dir, strings.Join(left, " "))
		return
	}
	if err := os.RemoveAll(dir); err != nil {
		fmt.Printf("integration: removing %s: %v\n", dir, err)
	}
}

// runIDs lists the pods and containers the daemons below the run directory dir have
// records or state of (idsOf each daemon directory).
func runIDs(dir string) []string {
	daemons, _ := filepath.Glob(filepath.Join(dir, "d-*"))
	return idsOf(daemons...)
}

// idsOf lists the pods and containers the daemons with these directories have records
// or state of: their cgroups under berth's default parent are named by these ids (64
// random hex digits, so that no other berthd's can be mistaken for them).
func idsOf(daemonDirs ...string) []string {
	var ids []string
	for _, d := range daemonDirs {
		for _, pattern := range []string{"root/pods/*", "state/pods/*", "root/containers/*", "state/containers/*"} {
			paths, _ := filepath.Glob(filepath.Join(d, pattern))
			for _, p := range paths {
				if id := filepath.Base(p); len(id) == 64 && !slices.Contains(ids, id) {
					ids = append(ids, id)
				}
			}
		}
	}
	return ids
}

// removeIDCgroups removes the cgroups of ids under berth's default parent /berth in
// every hierarchy, deepest first. Cgroups of pods that named a parent of their own are
// left to their tests. A v1 cgroup stays busy until its killed processes are reaped
// (by init, once their parents are gone too): tried again for up to 10 s.
func removeIDCgroups(ids []string) {
	parents, _ := filepath.Glob("/sys/fs/cgroup/*/berth")
	parents = append(parents, "/sys/fs/cgroup/berth")
	var left []string
	for _, parent := range parents {
		for _, id := range ids {
			left = append(left, filepath.Join(parent, id))
		}
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var errs []error
		left = slices.DeleteFunc(left, func(root string) bool {
			err := removeCgroupTree(root)
			errs = append(errs, err)
			return err == nil
		})
		if len(left) == 0 || time.Now().After(deadline) {
			for _, err := range errs {
				if err != nil {
					fmt.Printf("integration: leftover cgroup: %v\n", err)
				}
			}
			return
		}
	}
}

// removeCgroupTree removes the cgroup at root (if there) and those below it, deepest
// first; it fails with the first cgroup that stays (one with processes).
func removeCgroupTree(root string) error {
	var dirs []string
	_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, path)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := os.Remove(dirs[i]); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// mountPointsUnder lists the mount points below dir, deepest first.
func mountPointsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		// Octal escapes (\040 for a blank) as the kernel writes them.
		p, err := strconv.Unquote(`"` + strings.ReplaceAll(fields[4], `"`, `\"`) + `"`)
		if err != nil {
			p = fields[4]
		}
		if strings.HasPrefix(p, dir+"/") {
			out = append(out, p)
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(out)))
	return out, sc.Err()
}

// endRun stops what this binary's daemons started and removes its run directory, once
// (at the end of TestMain, on a signal, or just before -timeout).
var endRunOnce sync.Once

func endRun(why string) {
	endRunOnce.Do(func() {
		ids := runIDs(runDir)
		if n := stopDirProcs(runDir); n > 0 {
			fmt.Printf("integration: %s: stopped %d process(es) the daemons left\n", why, n)
		}
		removeIDCgroups(ids)
		removeNewParents()
		removeRunDir(runDir)
	})
}

// stopOnSignals ends the run on SIGINT and SIGTERM (go test passes them on; the
// default action would leave the daemons' monitors and containers behind), then exits
// as the signal would have.
func stopOnSignals() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-c
		fmt.Printf("integration: %v: stopping the processes the tests started\n", s)
		endRun(s.String())
		os.Exit(128 + int(s.(syscall.Signal)))
	}()
}

// stopBeforeTimeout ends the run a few seconds before the testing package panics at
// -timeout (the panic runs no deferred function or cleanup): first a dump of every
// goroutine, as the panic would print, so that the hang stays visible. Call it just
// before m.Run (which starts the testing package's own clock), and the function it
// returns once m.Run has returned.
func stopBeforeTimeout() (cancel func()) {
	f := flag.Lookup("test.timeout")
	if f == nil {
		return func() {}
	}
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return func() {}
	}
	timeout, _ := g.Get().(time.Duration)
	margin := 5 * time.Second
	if timeout <= 2*margin {
		return func() {}
	}
	timer := time.AfterFunc(timeout-margin, func() {
		fmt.Printf("integration: -timeout %v is %v away; goroutines, then the processes the tests started are stopped\n", timeout, margin)
		_ = pprof.Lookup("goroutine").WriteTo(os.Stdout, 2)
		endRun("timeout")
	})
	return func() { timer.Stop() }
}
