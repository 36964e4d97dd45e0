package cgroups

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// fakeV2 lays out a directory like a cgroup2 mount: interface files at the root and in
// kubelet's QoS cgroups /kubepods and /kubepods/burstable. Files the kernel would make
// in a new cgroup appear when berth writes them.
func fakeV2(t *testing.T, controllers string) (root string, m *Manager) {
	t.Helper()
	root = t.TempDir()
	for _, dir := range []string{"", "kubepods", "kubepods/burstable"} {
		fakeCgroupDir(t, filepath.Join(root, dir), controllers)
	}
	m, err := NewManager(Options{Root: root, Mode: ModeUnified})
	if err != nil {
		t.Fatal(err)
	}
	return root, m
}

func fakeCgroupDir(t *testing.T, dir, controllers string) {
	t.Helper()
	mustWrite(t, filepath.Join(dir, "cgroup.controllers"), controllers+"\n")
	mustWrite(t, filepath.Join(dir, "cgroup.subtree_control"), "")
	mustWrite(t, filepath.Join(dir, "cgroup.procs"), "")
}

func mustWrite(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// wantFiles checks the content of interface files in dir.
func wantFiles(t *testing.T, dir string, want map[string]string) {
	t.Helper()
	for name, value := range want {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if got := strings.TrimSpace(string(data)); got != value {
			t.Errorf("%s = %q; want %q", name, got, value)
		}
	}
}

func TestV2CreateUpdateRemove(t *testing.T) {
	const all = "cpuset cpu io memory hugetlb pids"
	root, m := fakeV2(t, all)
	res := &Resources{
		CPUShares: 512, CPUQuota: 50000, CPUPeriod: 100000, CPUSetCPUs: "0-1", CPUSetMems: "0",
		MemoryLimit: 256 << 20, PidsLimit: 1024,
		HugepageLimits: map[string]uint64{"2MB": 4 << 20},
		Unified:        map[string]string{"memory.high": "200000000"},
	}
	pod, err := m.Create("/kubepods/burstable/pod1", res)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	dir := filepath.Join(root, "kubepods/burstable/pod1")
	wantFiles(t, dir, map[string]string{
		"cpu.weight": "59", "cpu.max": "50000 100000", "cpuset.cpus": "0-1", "cpuset.mems": "0",
		"memory.max": "268435456", "pids.max": "1024", "hugetlb.2MB.max": "4194304",
		"memory.high": "200000000",
	})
	for _, d := range []string{root, filepath.Join(root, "kubepods"), filepath.Join(root, "kubepods/burstable")} {
		wantFiles(t, d, map[string]string{"cgroup.subtree_control": "+cpu +cpuset +io +memory +pids +hugetlb"})
	}
	if got := pod.State(); !reflect.DeepEqual(got, PodState{Parent: "/kubepods/burstable/pod1", Created: []string{""}}) {
		t.Errorf("State = %+v", got)
	}
	if pod.Path() != "/kubepods/burstable/pod1" {
		t.Errorf("Path = %q", pod.Path())
	}

	// Lifting limits writes "max", which cgroup2.Resources cannot say.
	if err := pod.Update(&Resources{CPUShares: 2048, CPUQuota: -1, MemoryLimit: -1, PidsLimit: -1}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	wantFiles(t, dir, map[string]string{"cpu.weight": "174", "cpu.max": "max", "memory.max": "max", "pids.max": "max"})

	// After a restart the stored state finds the same cgroup.
	again, err := m.Open(pod.State())
	if err != nil {
		t.Fatal(err)
	}
	if err := again.Remove(); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("pod cgroup still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "kubepods/burstable")); err != nil {
		t.Fatalf("Remove took the parent with it: %v", err)
	}
	if err := again.Remove(); err != nil {
		t.Fatalf("second Remove: %v", err)
	}
	if err := pod.Update(&Resources{}); !errdefs.IsNotFound(err) {
		t.Fatalf("Update after Remove: %v; want not found", err)
	}
	if _, err := pod.Stats(); !errdefs.IsNotFound(err) {
		t.Fatalf("Stats after Remove: %v; want not found", err)
	}
}

// A pod cgroup kubelet made stays kubelet's: berth writes to it but never removes it.
func TestV2KubeletCreated(t *testing.T) {
	root, m := fakeV2(t, "cpu memory pids")
	dir := filepath.Join(root, "kubepods/burstable/pod2")
	fakeCgroupDir(t, dir, "cpu memory pids")
	mustWrite(t, filepath.Join(dir, "memory.swap.max"), "max\n")

	pod, err := m.Create("/kubepods/burstable/pod2", &Resources{
		MemoryLimit: 100 << 20, MemorySwapLimit: 150 << 20, CPUPeriod: 50000,
		HugepageLimits: map[string]uint64{"2MB": 1 << 21}, // no hugetlb controller: skipped
	})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if len(pod.State().Created) != 0 {
		t.Fatalf("Created = %v; want nothing", pod.State().Created)
	}
	wantFiles(t, dir, map[string]string{"memory.max": "104857600", "memory.swap.max": "52428800", "cpu.max": "max 50000"})
	if _, err := os.Stat(filepath.Join(dir, "hugetlb.2MB.max")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("hugetlb written without the controller: %v", err)
	}
	wantFiles(t, root, map[string]string{"cgroup.subtree_control": "+cpu +memory +pids"})
	if err := pod.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("Remove deleted kubelet's cgroup: %v", err)
	}
}

func TestV2RemoveRefusesBusyCgroup(t *testing.T) {
	root, m := fakeV2(t, "cpu memory pids")
	pod, err := m.Create("/kubepods/burstable/pod3", nil)
	if err != nil {
		t.Fatal(err)
	}
	// A container cgroup below the pod still has a process.
	child := filepath.Join(root, "kubepods/burstable/pod3/ctr")
	mustWrite(t, filepath.Join(child, "cgroup.procs"), "4242\n")
	err = pod.Remove()
	if !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), "4242") {
		t.Fatalf("Remove = %v; want a failed precondition naming pid 4242", err)
	}
	if _, err := os.Stat(child); err != nil {
		t.Fatalf("Remove deleted a busy cgroup: %v", err)
	}
	// Once the process is gone, the pod and its empty children go.
	mustWrite(t, filepath.Join(child, "cgroup.procs"), "")
	if err := pod.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(child)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("pod cgroup left: %v", err)
	}
}

// A failed Create leaves nothing it made behind.
func TestV2CreateRollsBack(t *testing.T) {
	root, m := fakeV2(t, "cpu memory pids")
	// /newqos has no interface files, so enabling controllers in it fails.
	_, err := m.Create("/newqos/pod4", &Resources{MemoryLimit: 1 << 20})
	if err == nil {
		t.Fatal("Create succeeded without cgroup.subtree_control in the parent")
	}
	if _, err := os.Stat(filepath.Join(root, "newqos/pod4")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("failed Create left the pod cgroup: %v", err)
	}
}

func TestV2CreateInvalid(t *testing.T) {
	root, m := fakeV2(t, "cpu memory pids")
	tests := []struct {
		name   string
		parent string
		res    *Resources
	}{
		{"empty parent", "", nil},
		{"traversal", "/kubepods/../../etc", nil},
		{"bad quota", "/kubepods/pod5", &Resources{CPUQuota: 10}},
		{"bad unified key", "/kubepods/pod5", &Resources{Unified: map[string]string{"../x.y": "1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := m.Create(tt.parent, tt.res); !errdefs.IsInvalidArgument(err) {
				t.Fatalf("Create = %v; want invalid argument", err)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(root, "kubepods/pod5")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("invalid Create made a cgroup: %v", err)
	}
}

func TestV2Stats(t *testing.T) {
	root, m := fakeV2(t, "cpu memory pids")
	pod, err := m.Create("/kubepods/burstable/pod6", nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "kubepods/burstable/pod6")
	mustWrite(t, filepath.Join(dir, "cpu.stat"), "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n")
	mustWrite(t, filepath.Join(dir, "memory.current"), "10000\n")
	mustWrite(t, filepath.Join(dir, "memory.stat"), "anon 6000\nfile 4000\ninactive_file 3000\n")
	mustWrite(t, filepath.Join(dir, "pids.current"), "7\n")
	got, err := pod.Stats()
	if err != nil {
		t.Fatal(err)
	}
	want := &Stats{CPUUsageNanos: 1500000, MemoryUsageBytes: 10000, MemoryWorkingSetBytes: 7000, PidsCurrent: 7}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Stats = %+v; want %+v", got, want)
	}
}

func TestSystemdDriver(t *testing.T) {
	old := systemdRunDir
	t.Cleanup(func() { systemdRunDir = old })
	root := t.TempDir()

	systemdRunDir = filepath.Join(root, "no-systemd")
	_, err := NewManager(Options{Driver: DriverSystemd, Root: root, Mode: ModeUnified})
	if !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), "cgroupfs") {
		t.Fatalf("NewManager(systemd) without systemd = %v; want a failed precondition suggesting cgroupfs", err)
	}

	systemdRunDir = root
	m, err := NewManager(Options{Driver: DriverSystemd, Root: root, Mode: ModeUnified})
	if err != nil {
		t.Fatal(err)
	}
	if m.Driver() != DriverSystemd || m.Mode() != ModeUnified {
		t.Fatalf("Driver, Mode = %v, %v", m.Driver(), m.Mode())
	}
	if _, err := m.Create("/kubepods/pod1", nil); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("Create with a cgroupfs parent under systemd: %v", err)
	}
	pod, err := m.Create("kubepods-burstable-pod1.slice", &Resources{MemoryLimit: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if pod.Path() != "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice" {
		t.Errorf("Path = %q", pod.Path())
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Errorf("systemd driver wrote to the cgroupfs: %v", entries)
	}
	if err := pod.Update(&Resources{}); !errors.Is(err, errdefs.ErrUnimplemented) {
		t.Errorf("Update = %v; want unimplemented", err)
	}
	if err := pod.Remove(); err != nil {
		t.Errorf("Remove = %v", err)
	}
}

func TestNewManagerInvalid(t *testing.T) {
	if _, err := NewManager(Options{Driver: "docker", Root: t.TempDir(), Mode: ModeUnified}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("unknown driver: %v", err)
	}
	if _, err := NewManager(Options{Root: t.TempDir(), Mode: ModeLegacy}); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("v1 without controllers: %v", err)
	}
	if _, err := NewManager(Options{Root: t.TempDir()}); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("detecting a plain directory: %v", err)
	}
}
