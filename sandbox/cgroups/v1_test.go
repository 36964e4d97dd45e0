package cgroups

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// v1Host returns a Manager on this machine's real cgroup v1 hierarchies and a unique
// test parent whose directories, in every hierarchy, are removed when the test ends,
// whatever happened. It skips where that cannot run.
func v1Host(t *testing.T) (*Manager, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create cgroups")
	}
	m, err := NewManager(Options{})
	if err != nil {
		t.Skipf("no usable cgroups on this machine: %v", err)
	}
	if m.Mode() != ModeLegacy && m.Mode() != ModeHybrid {
		t.Skipf("this machine has cgroup %v, not v1", m.Mode())
	}
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	top := "/berth-test-" + hex.EncodeToString(b)
	t.Cleanup(func() {
		for _, pl := range m.backend.places(top) {
			if err := removeTree(pl.dir); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	return m, top
}

// hostDir is the directory of rel in hierarchy name, skipping the test when that
// controller is not mounted.
func hostDir(t *testing.T, m *Manager, name, rel string) string {
	t.Helper()
	for _, pl := range m.backend.places(rel) {
		if pl.name == name {
			return pl.dir
		}
	}
	t.Skipf("controller %s is not mounted here", name)
	return ""
}

func TestV1HostLifecycle(t *testing.T) {
	m, top := v1Host(t)
	parent := top + "/pod1"
	memDir := hostDir(t, m, "memory", parent)
	cpuDir := hostDir(t, m, "cpu", parent)
	res := &Resources{
		CPUShares: 512, CPUQuota: 50000, CPUPeriod: 100000, CPUSetCPUs: "0", CPUSetMems: "0",
		MemoryLimit: 64 << 20, PidsLimit: 100,
	}
	if _, err := os.Stat(filepath.Join(hostDir(t, m, "memory", "/"), "memory.memsw.limit_in_bytes")); err == nil {
		res.MemorySwapLimit = 128 << 20
	}
	pod, err := m.Create(parent, res)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	want := map[string]map[string]string{
		"memory": {"memory.limit_in_bytes": "67108864"},
		"cpu":    {"cpu.shares": "512", "cpu.cfs_quota_us": "50000", "cpu.cfs_period_us": "100000"},
		"pids":   {"pids.max": "100"},
		"cpuset": {"cpuset.cpus": "0", "cpuset.mems": "0"},
	}
	if res.MemorySwapLimit != 0 {
		want["memory"]["memory.memsw.limit_in_bytes"] = "134217728"
	}
	checkHostFiles(t, m, parent, want)
	created := pod.State().Created
	for _, pl := range m.backend.places(parent) {
		if !slices.Contains(created, pl.name) {
			t.Errorf("State().Created = %v; misses %s", created, pl.name)
		}
		if _, err := os.Stat(pl.dir); err != nil {
			t.Errorf("hierarchy %s: %v", pl.name, err)
		}
	}

	// Shrinking then growing memory and memory+swap needs the writes in the right order.
	for _, mem := range []int64{32 << 20, 256 << 20, 16 << 20} {
		up := &Resources{MemoryLimit: mem, CPUQuota: -1, PidsLimit: -1}
		if res.MemorySwapLimit != 0 {
			up.MemorySwapLimit = 2 * mem
		}
		if err := pod.Update(up); err != nil {
			t.Fatalf("Update(memory %d): %v", mem, err)
		}
		wantFiles(t, memDir, map[string]string{"memory.limit_in_bytes": strconv.FormatInt(mem, 10)})
	}
	wantFiles(t, cpuDir, map[string]string{"cpu.cfs_quota_us": "-1", "cpu.shares": "512"})
	checkHostFiles(t, m, parent, map[string]map[string]string{"pids": {"pids.max": "max"}})

	if err := pod.Update(&Resources{Unified: map[string]string{"memory.high": "1"}}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("Update with unified on v1 = %v; want invalid argument", err)
	}

	removeWithProcess(t, m, pod)
	for _, pl := range m.backend.places(parent) {
		if _, err := os.Stat(pl.dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("hierarchy %s: pod cgroup left after Remove (%v)", pl.name, err)
		}
	}
	if err := pod.Remove(); err != nil {
		t.Errorf("second Remove: %v", err)
	}
}

// removeWithProcess puts a process of the test's own in the pod cgroup, checks that
// Remove refuses to delete it and that Stats sees it, then ends the process and
// removes the pod.
func removeWithProcess(t *testing.T, m *Manager, pod *PodCgroup) {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}
	t.Cleanup(stop)
	pid := strconv.Itoa(cmd.Process.Pid)
	for _, name := range []string{"memory", "pids", "cpuacct"} {
		dir := hostDir(t, m, name, pod.Path())
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(pid), 0); err != nil {
			t.Fatalf("move pid %s into %s: %v", pid, dir, err)
		}
	}
	// v1 does not move memory charges with a task, so the sleep adds little usage; but
	// what it touches once moved is charged here, and a loaded machine may move it
	// while it is still starting (the dynamic loader, libc): the usage can grow while
	// Stats reads it. Stats must read the kernel's number of that moment, so it lies
	// between the readings taken just before and just after.
	memDir := hostDir(t, m, "memory", pod.Path())
	before, err := readInt(memDir, "memory.usage_in_bytes")
	if err != nil {
		t.Fatal(err)
	}
	stats, err := pod.Stats()
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	after, err := readInt(memDir, "memory.usage_in_bytes")
	if err != nil {
		t.Fatal(err)
	}
	usage := int64(stats.MemoryUsageBytes)
	if stats.PidsCurrent != 1 || usage < min(before, after) || usage > max(before, after) {
		t.Errorf("Stats = %+v; want one task and memory usage in [%d, %d]", stats, min(before, after), max(before, after))
	}
	if err := pod.Remove(); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("Remove with a live process = %v; want failed precondition", err)
	}
	if _, err := os.Stat(hostDir(t, m, "cpu", pod.Path())); err != nil {
		t.Fatalf("a refused Remove still deleted something: %v", err)
	}
	stop()
	if err := pod.Remove(); err != nil {
		t.Fatalf("Remove: %v", err)
	}
}

// A pod cgroup that already existed (kubelet made it) is configured but never removed.
func TestV1HostKubeletCreated(t *testing.T) {
	m, top := v1Host(t)
	parent := top + "/pod2"
	for _, pl := range m.backend.places(parent) {
		if err := os.MkdirAll(pl.dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	hostDir(t, m, "cpu", parent)
	pod, err := m.Create(parent, &Resources{CPUShares: 256})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if c := pod.State().Created; len(c) != 0 {
		t.Fatalf("Created = %v; want nothing", c)
	}
	checkHostFiles(t, m, parent, map[string]map[string]string{"cpu": {"cpu.shares": "256"}})
	if err := pod.Remove(); err != nil {
		t.Fatal(err)
	}
	for _, pl := range m.backend.places(parent) {
		if _, err := os.Stat(pl.dir); err != nil {
			t.Errorf("Remove deleted kubelet's cgroup in %s: %v", pl.name, err)
		}
	}
}

func TestV1HostCreateRefusesUnified(t *testing.T) {
	m, top := v1Host(t)
	_, err := m.Create(top+"/pod3", &Resources{Unified: map[string]string{"memory.high": "1"}})
	if !errdefs.IsInvalidArgument(err) {
		t.Fatalf("Create = %v; want invalid argument", err)
	}
	for _, pl := range m.backend.places(top) {
		if _, err := os.Stat(pl.dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("refused Create made %s", pl.dir)
		}
	}
}

// A write the kernel refuses undoes the directories Create made, in every hierarchy.
func TestV1HostCreateRollsBack(t *testing.T) {
	m, top := v1Host(t)
	hostDir(t, m, "cpuset", top)
	_, err := m.Create(top+"/pod4", &Resources{MemoryLimit: 64 << 20, CPUSetCPUs: "4095"})
	if err == nil {
		t.Fatal("Create with a CPU this machine lacks succeeded")
	}
	t.Logf("Create: %v", err)
	for _, pl := range m.backend.places(top + "/pod4") {
		if _, err := os.Stat(pl.dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("failed Create left %s (%v)", pl.dir, err)
		}
	}
}

// checkHostFiles checks interface files per controller, skipping controllers that are
// not mounted.
func checkHostFiles(t *testing.T, m *Manager, rel string, want map[string]map[string]string) {
	t.Helper()
	for _, pl := range m.backend.places(rel) {
		if files, ok := want[pl.name]; ok {
			wantFiles(t, pl.dir, files)
		}
	}
}
