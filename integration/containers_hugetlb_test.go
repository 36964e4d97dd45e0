package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// nodeHugepageLimits is what kubelet sends: a limit (here 0) for every huge page size
// the node offers, named as the kernel's hugetlb files name them ("2MB").
func nodeHugepageLimits(t *testing.T) []*runtimeapi.HugepageLimit {
	t.Helper()
	dirs, _ := filepath.Glob("/sys/kernel/mm/hugepages/hugepages-*kB")
	if len(dirs) == 0 {
		// kubelet sends none then; one made-up size still proves the limit is tolerated.
		return []*runtimeapi.HugepageLimit{{PageSize: "2MB"}}
	}
	var out []*runtimeapi.HugepageLimit
	for _, d := range dirs {
		kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(d), "hugepages-"), "kB"))
		if err != nil {
			t.Fatal(err)
		}
		size := strconv.Itoa(kb) + "KB"
		switch {
		case kb%(1<<20) == 0:
			size = strconv.Itoa(kb>>20) + "GB"
		case kb%(1<<10) == 0:
			size = strconv.Itoa(kb>>10) + "MB"
		}
		out = append(out, &runtimeapi.HugepageLimit{PageSize: size})
	}
	return out
}

// TestContainerHugepageLimits: a container with kubelet's hugepage limits starts and
// takes its other limits, and accepts an update carrying them, whether or not the
// hugetlb controller is on the hierarchy runc uses (on this CI node it is not: berthd
// drops the limits, as containerd's tolerate_missing_hugetlb_controller does).
func TestContainerHugepageLimits(t *testing.T) {
	e := newCtrEnv(t)
	limits := nodeHugepageLimits(t)
	id := e.run(t, ctrConfig("hugepages", []string{"sleep", "1000"}, func(c *runtimeapi.ContainerConfig) {
		c.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 64 << 20, HugepageLimits: limits}
	}))
	e.removeAtEnd(t, id)
	if st := e.status(t, id); st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("state %v, want running", st.State)
	}
	if _, err := os.Stat("/sys/fs/cgroup/memory"); err == nil {
		limitFile := filepath.Join("/sys/fs/cgroup/memory/berth", id, "memory.limit_in_bytes")
		if got := strings.TrimSpace(readFile(t, limitFile)); got != strconv.Itoa(64<<20) {
			t.Errorf("memory.limit_in_bytes = %s, want %d", got, 64<<20)
		}
	}
	upd := &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 96 << 20, HugepageLimits: limits}
	if _, err := e.d.runtime.UpdateContainerResources(ctxTimeout(t, time.Minute), &runtimeapi.UpdateContainerResourcesRequest{ContainerId: id, Linux: upd}); err != nil {
		t.Fatalf("UpdateContainerResources with hugepage limits: %v", err)
	}
	if _, err := os.Stat("/sys/fs/cgroup/hugetlb"); err != nil && !strings.Contains(e.d.log.String(), "hugepage limits in container resources are dropped") {
		t.Errorf("berthd did not say that it drops hugepage limits")
	}
	if n := strings.Count(e.d.log.String(), "hugepage limits in container resources are dropped"); n > 1 {
		t.Errorf("berthd said %d times that it drops hugepage limits, want once at start", n)
	}
}
