package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/containerd/cgroups/v3/cgroup2"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// v2Backend manages cgroups on a cgroup v2 (unified) node through cgroup2.Manager.
// It never uses cgroup2.NewManager, which removes the directory when a write fails:
// that directory may be kubelet's.
type v2Backend struct {
	root string
}

// podControllers are the controllers a pod cgroup gets when the node has them, as
// kubelet enables them: the OCI runtime needs them enabled down to the pod to limit
// and account its containers.
var podControllers = []string{"cpu", "cpuset", "io", "memory", "pids", "hugetlb"}

func (b *v2Backend) places(rel string) []place {
	return []place{{name: "", dir: filepath.Join(b.root, rel)}}
}

func (b *v2Backend) check(*Resources) error { return nil }

func (b *v2Backend) create(rel string, r *Resources) error {
	if err := os.MkdirAll(filepath.Join(b.root, rel), 0o755); err != nil {
		return err
	}
	return b.update(rel, r)
}

// update enables the pod's controllers in every ancestor's cgroup.subtree_control,
// lets cgroup2 write what its Resources can express, then writes the rest itself: "max"
// for removed limits, memory.swap.max, and the unified entries.
func (b *v2Backend) update(rel string, r *Resources) error {
	available, err := b.controllers()
	if err != nil {
		return err
	}
	mgr, err := cgroup2.Load(rel, cgroup2.WithMountpoint(b.root))
	if err != nil {
		return fmt.Errorf("load %s: %w", rel, err)
	}
	var enable []string
	for _, c := range podControllers {
		if slices.Contains(available, c) {
			enable = append(enable, c)
		}
	}
	if err := mgr.ToggleControllers(enable, cgroup2.Enable); err != nil {
		return err
	}
	if err := mgr.Update(v2Resources(r, slices.Contains(available, "hugetlb"))); err != nil {
		return err
	}
	return b.writeRaw(filepath.Join(b.root, rel), r)
}

// controllers lists the controllers the root offers.
func (b *v2Backend) controllers() ([]string, error) {
	data, err := os.ReadFile(filepath.Join(b.root, "cgroup.controllers"))
	if err != nil {
		return nil, fmt.Errorf("read root controllers: %w", err)
	}
	return strings.Fields(string(data)), nil
}

// v2Resources converts the settings of r that cgroup2.Resources can express. Hugepage
// limits are dropped when the node has no hugetlb controller, as on v1.
func v2Resources(r *Resources, hugetlb bool) *cgroup2.Resources {
	out := &cgroup2.Resources{}
	cpu := cgroup2.CPU{Cpus: r.CPUSetCPUs, Mems: r.CPUSetMems}
	if w := CPUSharesToWeight(r.CPUShares); w != 0 {
		cpu.Weight = &w
	}
	if line := cpuMax(r.CPUQuota, r.CPUPeriod); line != "" {
		cpu.Max = cgroup2.CPUMax(line)
	}
	if cpu != (cgroup2.CPU{}) {
		out.CPU = &cpu
	}
	if r.MemoryLimit > 0 {
		out.Memory = &cgroup2.Memory{Max: &r.MemoryLimit}
	}
	if r.PidsLimit != 0 {
		out.Pids = &cgroup2.Pids{Max: r.PidsLimit} // -1 is written as "max"
	}
	if hugetlb && len(r.HugepageLimits) > 0 {
		var h cgroup2.HugeTlb
		for _, size := range slices.Sorted(maps.Keys(r.HugepageLimits)) {
			h = append(h, cgroup2.HugeTlbEntry{HugePageSize: size, Limit: r.HugepageLimits[size]})
		}
		out.HugeTlb = &h
	}
	return out
}

// cpuMax is the cpu.max line for a quota and period: "max" when there is no quota, the
// period only when one is given (the kernel keeps the current one otherwise), and ""
// when neither is set.
func cpuMax(quota int64, period uint64) string {
	if quota == 0 && period == 0 {
		return ""
	}
	s := "max"
	if quota > 0 {
		s = strconv.FormatInt(quota, 10)
	}
	if period != 0 {
		s += " " + strconv.FormatUint(period, 10)
	}
	return s
}

// writeRaw writes what cgroup2.Resources cannot express.
func (b *v2Backend) writeRaw(dir string, r *Resources) error {
	if r.MemoryLimit == -1 {
		if err := writeFile(dir, "memory.max", "max"); err != nil {
			return err
		}
	}
	if err := writeSwapV2(dir, r); err != nil {
		return err
	}
	for _, key := range slices.Sorted(maps.Keys(r.Unified)) {
		if err := writeFile(dir, key, r.Unified[key]); err != nil {
			return err
		}
	}
	return nil
}

// writeSwapV2 sets memory.swap.max, which counts swap alone: the OCI memory+swap limit
// minus the memory limit. Without the file (no swap support) a limit that allows no
// swap, or unlimited swap, is the node's behaviour anyway and is skipped.
func writeSwapV2(dir string, r *Resources) error {
	if r.MemorySwapLimit == 0 {
		return nil
	}
	value := "max"
	if r.MemorySwapLimit > 0 {
		value = strconv.FormatInt(r.MemorySwapLimit-r.MemoryLimit, 10)
	}
	if _, err := os.Stat(filepath.Join(dir, "memory.swap.max")); errors.Is(err, fs.ErrNotExist) {
		if value == "max" || value == "0" {
			return nil
		}
		return fmt.Errorf("memory+swap limit: this node has no swap control: %w", errdefs.ErrFailedPrecondition)
	}
	return writeFile(dir, "memory.swap.max", value)
}
