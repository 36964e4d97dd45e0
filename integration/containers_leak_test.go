package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestContainersLeak runs 30 pods from 10 goroutines at once (3 rounds each), each with
// a long-running container (exec'd into) and one that exits at once. In two rounds of
// three the containers are stopped and removed before the pod; in the third the running
// container is left for StopPodSandbox and RemovePodSandbox to take down. Afterwards
// nothing may be left: container traces, monitors, container processes, cgroups,
// overlay mounts, and what TestPodLeaks checks of the pods.
func TestContainersLeak(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 30 pods and 60 containers")
	}
	// The env of newCtrEnv, without its long-lived pod: every pod here must go.
	_, imgs := testCatalogue(t)
	reg := serveRegistry(t, imgs...)
	n := newTestNetwork(t)
	d := startDaemon(t, daemonOptions{Config: n.toml() + reg.MirrorTOML()})
	d.pull(t, busyboxRef)
	logRoot := t.TempDir()

	const goroutines, rounds = 10, 3
	var (
		mu       sync.Mutex
		podIDs   []string
		pausePid []int
		ctrIDs   []string
	)
	record := func(pod string, pid int, ctrs ...string) {
		mu.Lock()
		defer mu.Unlock()
		if pod != "" {
			podIDs, pausePid = append(podIDs, pod), append(pausePid, pid)
		}
		ctrIDs = append(ctrIDs, ctrs...)
	}
	call := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), time.Minute)
	}

	// round runs one pod's life; it reports failures with t.Errorf (it runs off the
	// test goroutine) and returns at the first one, leaving the rest to the cleanup.
	round := func(name string, podTakesDown bool) {
		rt := d.runtime
		logDir := filepath.Join(logRoot, name)
		if err := os.MkdirAll(logDir, 0o755); err != nil {
			t.Errorf("%s: %v", name, err)
			return
		}
		podCfg := podConfig(t, name, func(c *runtimeapi.PodSandboxConfig) { c.LogDirectory = logDir })
		ctx, cancel := call()
		defer cancel()
		pr, err := rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: podCfg})
		if err != nil {
			t.Errorf("%s: RunPodSandbox: %v", name, err)
			return
		}
		pod := pr.PodSandboxId
		ps, err := rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: pod, Verbose: true})
		var info podInfo
		if err == nil {
			err = json.Unmarshal([]byte(ps.Info["info"]), &info)
		}
		record(pod, info.Pid)
		if err != nil {
			t.Errorf("%s: PodSandboxStatus: %v", name, err)
			return
		}

		runCtr := func(cname string, cmd []string) (string, bool) {
			cr, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
				PodSandboxId: pod, Config: ctrConfig(cname, cmd), SandboxConfig: podCfg,
			})
			if err != nil {
				t.Errorf("%s: CreateContainer %s: %v", name, cname, err)
				return "", false
			}
			record("", 0, cr.ContainerId)
			if _, err := rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: cr.ContainerId}); err != nil {
				t.Errorf("%s: StartContainer %s: %v", name, cname, err)
				return cr.ContainerId, false
			}
			return cr.ContainerId, true
		}
		sleeper, ok := runCtr("sleeper", []string{"sleep", "1000"})
		if !ok {
			return
		}
		quick, ok := runCtr("quick", []string{"true"})
		if !ok {
			return
		}
		er, err := rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: sleeper, Cmd: []string{"echo", "hi"}})
		if err != nil || er.ExitCode != 0 || string(er.Stdout) != "hi\n" {
			t.Errorf("%s: ExecSync echo hi = %v, %v", name, er, err)
			return
		}

		if !podTakesDown {
			if _, err := rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: sleeper, Timeout: 0}); err != nil {
				t.Errorf("%s: StopContainer: %v", name, err)
				return
			}
			// quick exits at once; wait for it (as a kubelet would) before removing it.
			for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
				st, err := rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: quick})
				if err != nil {
					t.Errorf("%s: ContainerStatus quick: %v", name, err)
					return
				}
				if st.Status.State == runtimeapi.ContainerState_CONTAINER_EXITED {
					if st.Status.ExitCode != 0 {
						t.Errorf("%s: quick exited %d (%s)", name, st.Status.ExitCode, st.Status.Reason)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("%s: quick still %v after 30s", name, st.Status.State)
					return
				}
			}
			for _, id := range []string{sleeper, quick} {
				if _, err := rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
					t.Errorf("%s: RemoveContainer %s: %v", name, id, err)
					return
				}
			}
		}
		if _, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: pod}); err != nil {
			t.Errorf("%s: StopPodSandbox: %v", name, err)
			return
		}
		if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: pod}); err != nil {
			t.Errorf("%s: RemovePodSandbox: %v", name, err)
			return
		}
		for _, id := range []string{sleeper, quick} {
			if _, err := rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id}); err == nil {
				t.Errorf("%s: container %s still known after RemovePodSandbox", name, id)
			}
		}
	}

	// Whatever a failed round left is removed when the test ends.
	t.Cleanup(func() {
		ctx, cancel := call()
		defer cancel()
		mu.Lock()
		defer mu.Unlock()
		for _, id := range podIDs {
			_, _ = d.runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id})
			_, _ = d.runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id})
		}
	})

	start := time.Now()
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for r := range rounds {
				round(fmt.Sprintf("leak-%d-%d", g, r), (g+r)%rounds == 0)
			}
		})
	}
	wg.Wait()
	t.Logf("%d goroutines x %d rounds took %s", goroutines, rounds, time.Since(start).Round(time.Millisecond))

	mu.Lock()
	ids := append(slices.Clone(podIDs), ctrIDs...)
	pids := slices.Clone(pausePid)
	mu.Unlock()
	if len(podIDs) != goroutines*rounds || len(ctrIDs) != 2*goroutines*rounds {
		t.Errorf("ran %d pods and %d containers, want %d and %d", len(podIDs), len(ctrIDs), goroutines*rounds, 2*goroutines*rounds)
	}

	var l ctrLeftovers
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if l = containerLeftovers(t, d, ids); l.empty() {
			break
		}
	}
	if !l.empty() {
		t.Errorf("containers left traces behind: %+v", l)
	}
	waitNoLeftovers(t, d, n, pids, podIDs)
	if d.log.Contains("DATA RACE") {
		t.Errorf("berthd reported a data race (its log follows)")
	}
}

// ctrLeftovers are the traces containers can leave on a node.
type ctrLeftovers struct {
	Traces                               ctrTraces
	Monitors, Sleepers, Cgroups, Overlay []string
}

func (l ctrLeftovers) empty() bool {
	tr := l.Traces
	return len(tr.Mounts)+len(tr.Records)+len(tr.StateDirs)+len(tr.RWDirs)+len(tr.RuntimeState)+
		len(l.Monitors)+len(l.Sleepers)+len(l.Cgroups)+len(l.Overlay) == 0
}

// containerLeftovers lists berthd's container traces, the berth-monitors running for
// its directory, the "sleep 1000" processes in a cgroup of ids, the cgroups of ids
// under the default parent /berth, and the overlay mounts under its directory. Only
// this daemon's own things count: other berthds (other tests, other lanes on the
// machine) share /berth and make and remove cgroups there all the while.
func containerLeftovers(t *testing.T, d *daemon, ids []string) ctrLeftovers {
	l := ctrLeftovers{Traces: containerTraces(t, d)}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		cmdline, err := os.ReadFile(filepath.Join(p, "cmdline"))
		if err != nil || len(cmdline) == 0 {
			continue
		}
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		pid := filepath.Base(p)
		if filepath.Base(args[0]) == "berth-monitor" && bytes.Contains(cmdline, []byte(d.dir+"/")) {
			l.Monitors = append(l.Monitors, pid+" "+strings.Join(args, " "))
		}
		if len(args) == 2 && filepath.Base(args[0]) == "sleep" && args[1] == "1000" {
			cg, _ := os.ReadFile(filepath.Join(p, "cgroup"))
			for _, id := range ids {
				if bytes.Contains(cg, []byte("/berth/"+id)) {
					l.Sleepers = append(l.Sleepers, pid+" in /berth/"+id)
					break
				}
			}
		}
	}
	for _, c := range berthCgroups() {
		if slices.Contains(ids, filepath.Base(c)) {
			l.Cgroups = append(l.Cgroups, c)
		}
	}
	l.Overlay = overlayMountsUnder(t, d.dir)
	return l
}

// berthCgroups lists the cgroups directly under the default parent /berth in every
// hierarchy, as "<hierarchy>/<name>".
func berthCgroups() []string {
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/berth")
	if fi, err := os.Stat("/sys/fs/cgroup/berth"); err == nil && fi.IsDir() {
		dirs = append(dirs, "/sys/fs/cgroup/berth")
	}
	var out []string
	for _, dir := range dirs {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if e.IsDir() {
				out = append(out, filepath.Join(dir, e.Name()))
			}
		}
	}
	return out
}

// overlayMountsUnder lists the overlay mount points under dir.
func overlayMountsUnder(t *testing.T, dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source super
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields, tail := strings.Fields(pre), strings.Fields(post)
		if ok && len(fields) > 4 && len(tail) > 0 && tail[0] == "overlay" && strings.HasPrefix(fields[4], dir+"/") {
			out = append(out, fields[4])
		}
	}
	return out
}
