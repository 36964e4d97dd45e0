package integration

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/network/cnitest"
)

// startPodDaemon starts berthd on the test network, with extra TOML appended.
func startPodDaemon(t *testing.T, n *testNetwork, extra string) *daemon {
	t.Helper()
	return startDaemon(t, daemonOptions{Config: n.toml() + extra})
}

// podConfig is a pod named name in namespace "it" with a fresh uid; edits adjust it.
func podConfig(t testing.TB, name string, edits ...func(*runtimeapi.PodSandboxConfig)) *runtimeapi.PodSandboxConfig {
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "it", Uid: cnitest.RandomHex(t, 8)},
		Hostname: name,
		Linux:    &runtimeapi.LinuxPodSandboxConfig{},
	}
	for _, e := range edits {
		e(cfg)
	}
	return cfg
}

// withNamespaces sets the pod's namespace options.
func withNamespaces(network, pid, ipc runtimeapi.NamespaceMode) func(*runtimeapi.PodSandboxConfig) {
	return func(c *runtimeapi.PodSandboxConfig) {
		c.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Network: network, Pid: pid, Ipc: ipc},
		}
	}
}

func (d *daemon) runPod(t testing.TB, cfg *runtimeapi.PodSandboxConfig) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := d.runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		t.Fatalf("RunPodSandbox %s: %v", cfg.Metadata.Name, err)
	}
	return resp.PodSandboxId
}

func (d *daemon) stopPod(t testing.TB, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := d.runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
		t.Fatalf("StopPodSandbox %s: %v", id, err)
	}
}

func (d *daemon) removePod(t testing.TB, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := d.runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
		t.Fatalf("RemovePodSandbox %s: %v", id, err)
	}
}

// podInfo is the verbose part of PodSandboxStatus that the tests read.
type podInfo struct {
	State       string   `json:"state"`
	Pid         int      `json:"pid"`
	NetNS       string   `json:"netns"`
	IPCNS       string   `json:"ipcns"`
	UTSNS       string   `json:"utsns"`
	IPs         []string `json:"ips"`
	Shm         string   `json:"shm"`
	PodDir      string   `json:"podDir"`
	CgroupsPath string   `json:"cgroupsPath"`
}

func (d *daemon) podStatus(t testing.TB, id string) (*runtimeapi.PodSandboxStatus, podInfo) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := d.runtime.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id, Verbose: true})
	if err != nil {
		t.Fatalf("PodSandboxStatus %s: %v", id, err)
	}
	var info podInfo
	if err := json.Unmarshal([]byte(resp.Info["info"]), &info); err != nil {
		t.Fatalf("verbose info %q: %v", resp.Info["info"], err)
	}
	return resp.Status, info
}

func (d *daemon) listPods(t testing.TB, f *runtimeapi.PodSandboxFilter) []*runtimeapi.PodSandbox {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := d.runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: f})
	if err != nil {
		t.Fatalf("ListPodSandbox: %v", err)
	}
	return resp.Items
}

// cleanupPods stops and removes the pods of ids still there when the test ends.
func (d *daemon) cleanupPods(t *testing.T, ids ...string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, id := range ids {
			_, _ = d.runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id})
		}
	})
}

// leftovers are the traces pods can leave on a node.
type leftovers struct {
	Mounts, IPs, Veths, Records, PodDirs, RuntimeState, Processes, Cgroups []string
}

func (l leftovers) empty() bool {
	return len(l.Mounts)+len(l.IPs)+len(l.Veths)+len(l.Records)+len(l.PodDirs)+
		len(l.RuntimeState)+len(l.Processes)+len(l.Cgroups) == 0
}

// podLeftovers lists what is left of pods in berthd's directories and on the node:
// mounts (pinned namespaces, shm) under the daemon's directory, host-local addresses,
// veths on the bridge, records, pod directories, runtime state, the given pause pids
// still alive, and the cgroups (under the default parent /berth) of the given pod ids.
func podLeftovers(t testing.TB, d *daemon, n *testNetwork, pids []int, ids []string) leftovers {
	t.Helper()
	var l leftovers
	l.Mounts = mountsUnder(t, d.dir)
	l.IPs = cnitest.Allocated(t, n.dataDir, n.name)
	l.Veths = cnitest.BridgePorts(t, n.bridge)
	l.Records = dirNames(filepath.Join(d.root(), "pods"))
	l.PodDirs = dirNames(filepath.Join(d.dir, "state", "pods"))
	l.RuntimeState = dirNames(filepath.Join(d.dir, "state", "runtime", "runc"))
	for _, pid := range pids {
		if alive(pid) {
			l.Processes = append(l.Processes, strconv.Itoa(pid))
		}
	}
	for _, pid := range childPauses(d.cmd.Process.Pid) {
		if !slices.Contains(pids, pid) {
			l.Processes = append(l.Processes, strconv.Itoa(pid))
		}
	}
	for _, id := range ids {
		l.Cgroups = append(l.Cgroups, cgroupDirs("/berth/"+id)...)
	}
	return l
}

// waitNoLeftovers polls podLeftovers for a few seconds (the kernel finishes some
// teardown asynchronously) and fails the test with what is left.
func waitNoLeftovers(t testing.TB, d *daemon, n *testNetwork, pids []int, ids []string) {
	t.Helper()
	var l leftovers
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if l = podLeftovers(t, d, n, pids, ids); l.empty() {
			return
		}
	}
	t.Errorf("pods left traces behind: %+v", l)
}

// mountsUnder lists the mount points under dir.
func mountsUnder(t testing.TB, dir string) []string {
	t.Helper()
	out, err := mountPointsUnder(dir)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func dirNames(dir string) []string {
	entries, _ := os.ReadDir(dir)
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// alive reports whether pid is a process that has not exited (zombies have).
func alive(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(data), ')')
	return i < 0 || !strings.HasPrefix(string(data[i+1:]), " Z")
}

// childPauses lists the live pause processes whose parent is ppid (berthd adopts the
// pauses it starts: it is a subreaper).
func childPauses(ppid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(data)
		i := strings.LastIndexByte(s, ')')
		if i < 0 || !strings.HasSuffix(s[:i], "(pause") {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && f[0] != "Z" && f[1] == strconv.Itoa(ppid) {
			out = append(out, pid)
		}
	}
	return out
}

var subreaperOnce sync.Once

// becomeSubreaper makes the test process adopt what a killed berthd leaves (its pauses,
// a hanging plugin), so that the test can reap them: this node's init does not.
func becomeSubreaper(t *testing.T) {
	subreaperOnce.Do(func() {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			t.Fatal(err)
		}
	})
}

// cgroupDirs lists the cgroup hierarchies in which path exists.
func cgroupDirs(path string) []string {
	var out []string
	for _, h := range []string{"memory", "cpu", "pids", "systemd", "unified", ""} {
		dir := filepath.Join("/sys/fs/cgroup", h, path)
		if _, err := os.Stat(dir); err == nil {
			out = append(out, dir)
		}
	}
	return out
}

// reapOrphans reaps the given pids if they are this test process's children (a pause
// whose berthd was killed is adopted by the test process, a subreaper), so that no
// zombie outlives the test on a node whose init does not reap.
func reapOrphans(pids []int) {
	for _, pid := range pids {
		var ws unix.WaitStatus
		for range 100 {
			got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
			if got == pid || errors.Is(err, unix.ECHILD) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
