package integration

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestContainersSurviveRestart kills berthd (SIGKILL, as a crash would) with a running
// container and one that exits while berthd is down. The first keeps running and
// logging, and the next berthd reports it RUNNING; the second is EXITED with its own
// code and the time it really finished.
func TestContainersSurviveRestart(t *testing.T) {
	becomeSubreaper(t)
	e := newCtrEnv(t)
	counter := e.run(t, ctrConfig("counter", sh(`i=0; while true; do echo $i; i=$((i+1)); sleep 0.1; done`)))
	counterLog := filepath.Join(e.logDir, "counter", "0.log")
	waitLogContains(t, counterLog, " stdout F 3\n", 20*time.Second)
	brief := e.run(t, ctrConfig("brief", sh("sleep 2; exit 3")))
	counterInfo, briefInfo := e.info(t, counter), e.info(t, brief)
	var orphans []int
	for _, i := range []ctrInfo{counterInfo, briefInfo} {
		orphans = append(orphans, i.MonitorPid, i.Pid)
	}
	// Whatever happens, the monitors and containers berthd leaves to this process
	// (a subreaper) are reaped.
	t.Cleanup(func() { reapOrphans(orphans) })
	briefStarted := time.Unix(0, e.status(t, brief).StartedAt)
	counterStatus := e.status(t, counter)

	killedAt := time.Now()
	e.d.kill()
	if !alive(counterInfo.Pid) || !alive(counterInfo.MonitorPid) {
		t.Fatalf("berthd's death took the container (%v) or its monitor (%v) with it", alive(counterInfo.Pid), alive(counterInfo.MonitorPid))
	}
	// The brief container ends while berthd is down: waited for, not timed (its sleep 2
	// takes longer on a loaded machine), until its monitor has recorded the exit (after
	// reaping it: the pid alone going is too early). Meanwhile the counter goes on
	// logging.
	exitFile := filepath.Join(e.d.dir, "state", "containers", brief, "monitor", "exit.json")
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(exitFile); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("brief (pid %d, alive %v) has no recorded exit 30 s after berthd's death", briefInfo.Pid, alive(briefInfo.Pid))
		}
	}
	waitLogLineAfter(t, counterLog, killedAt, 30*time.Second)
	restartedAt := time.Now()

	d2 := startDaemon(t, daemonOptions{Dir: e.d.dir, Config: e.config})
	d2.cleanupPods(t, e.pod)
	e.d = d2
	st := e.status(t, counter)
	if st.State != runtimeapi.ContainerState_CONTAINER_RUNNING || st.StartedAt != counterStatus.StartedAt || st.CreatedAt != counterStatus.CreatedAt {
		t.Errorf("counter after the restart: %v, started %d created %d; was %v %d %d",
			st.State, st.StartedAt, st.CreatedAt, counterStatus.State, counterStatus.StartedAt, counterStatus.CreatedAt)
	}
	if info := e.info(t, counter); info.Pid != counterInfo.Pid {
		t.Errorf("counter's pid after the restart %d, was %d", info.Pid, counterInfo.Pid)
	}
	if out := e.exec(t, counter, "echo", "reachable"); out != "reachable\n" {
		t.Errorf("exec after the restart: %q", out)
	}
	st = e.waitExited(t, brief, 10*time.Second)
	finished := time.Unix(0, st.FinishedAt)
	if st.ExitCode != 3 || st.Reason != "Error" {
		t.Errorf("brief after the restart: code %d reason %q, want 3 Error", st.ExitCode, st.Reason)
	}
	if ran := finished.Sub(briefStarted); ran < 1900*time.Millisecond || !finished.Before(restartedAt) {
		t.Errorf("brief finished at %v (ran %s), want at least 2 s after its start %v and before the restart %v",
			finished, ran, briefStarted, restartedAt)
	}
	if got := listContainers(t, e, nil); len(got) != 2 {
		t.Errorf("%d containers listed after the restart, want 2", len(got))
	}

	e.stop(t, counter, 0)
	if st := e.status(t, counter); st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.ExitCode != 137 {
		t.Errorf("counter stopped after the restart: %v code %d, want EXITED 137", st.State, st.ExitCode)
	}
	// No line was lost while berthd was down: the count has no gap. (How many lines
	// there are depends on how fast a loaded machine forks the sleeps, so it is not
	// checked; that the container logged while berthd was down, by the lines' own
	// times, was waited for above.)
	count := strings.Fields(logText(t, counterLog))
	for i, n := range count {
		if n != strconv.Itoa(i) {
			t.Errorf("counter's log line %d is %q, want %d", i, n, i)
			break
		}
	}
	e.d.stopPod(t, e.pod)
	e.d.removePod(t, e.pod)
	reapOrphans(orphans)
	if tr := containerTraces(t, e.d); len(tr.Mounts)+len(tr.Records)+len(tr.StateDirs)+len(tr.RWDirs)+len(tr.RuntimeState) != 0 {
		t.Errorf("containers left traces after the restart: %+v", tr)
	}
	for _, pid := range orphans {
		if alive(pid) {
			t.Errorf("process %d still runs", pid)
		}
	}
}

// waitLogLineAfter polls the CRI log at path until its last complete line was logged
// after since (by the time the monitor wrote on it).
func waitLogLineAfter(t *testing.T, path string, since time.Time, timeout time.Duration) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(timeout); ; time.Sleep(50 * time.Millisecond) {
		data, _ := os.ReadFile(path)
		if end := bytes.LastIndexByte(data, '\n'); end > 0 {
			last = string(data[bytes.LastIndexByte(data[:end], '\n')+1 : end])
			ts, _, _ := strings.Cut(last, " ")
			if at, err := time.Parse(time.RFC3339Nano, ts); err == nil && at.After(since) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no line logged to %s since %v; the last: %q", path, since, last)
		}
	}
}

// TestCreatedContainersSurviveRestart kills berthd between CreateContainer and
// StartContainer. The monitors spawned by the creates wait: the next berthd starts one
// container through its waiting monitor, and removing the other ends its monitor.
func TestCreatedContainersSurviveRestart(t *testing.T) {
	becomeSubreaper(t)
	e := newCtrEnv(t)
	started := e.create(t, ctrConfig("later", sh("echo late start; sleep 1000")))
	dropped := e.create(t, ctrConfig("never", sh("echo never")))
	startedInfo, droppedInfo := e.info(t, started), e.info(t, dropped)
	orphans := []int{startedInfo.MonitorPid, droppedInfo.MonitorPid}
	t.Cleanup(func() { reapOrphans(orphans) })
	if !alive(startedInfo.MonitorPid) || !alive(droppedInfo.MonitorPid) {
		t.Fatal("created containers have no waiting monitor")
	}

	e.d.kill()
	d2 := startDaemon(t, daemonOptions{Dir: e.d.dir, Config: e.config})
	d2.cleanupPods(t, e.pod)
	e.d = d2
	for _, id := range []string{started, dropped} {
		if st := e.status(t, id); st.State != runtimeapi.ContainerState_CONTAINER_CREATED {
			t.Fatalf("%s after the restart: %v, want CREATED", id, st.State)
		}
	}
	e.start(t, started)
	info := e.info(t, started)
	if info.MonitorPid != startedInfo.MonitorPid {
		t.Errorf("started through monitor %d, want the waiting one %d", info.MonitorPid, startedInfo.MonitorPid)
	}
	orphans = append(orphans, info.Pid)
	waitLogContains(t, filepath.Join(e.logDir, "later", "0.log"), " stdout F late start\n", 20*time.Second)

	e.remove(t, dropped)
	deadline := time.Now().Add(5 * time.Second)
	for alive(droppedInfo.MonitorPid) && time.Now().Before(deadline) {
		reapOrphans([]int{droppedInfo.MonitorPid})
		time.Sleep(20 * time.Millisecond)
	}
	if alive(droppedInfo.MonitorPid) {
		t.Errorf("the waiting monitor of a removed container (%d) still runs", droppedInfo.MonitorPid)
	}
	e.d.stopPod(t, e.pod)
	e.d.removePod(t, e.pod)
	reapOrphans(orphans)
	if tr := containerTraces(t, e.d); len(tr.Mounts)+len(tr.Records)+len(tr.StateDirs)+len(tr.RWDirs)+len(tr.RuntimeState) != 0 {
		t.Errorf("containers left traces after the restart: %+v", tr)
	}
}
