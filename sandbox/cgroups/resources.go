package cgroups

import (
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Resources are the cgroup limits berth applies to a pod cgroup and writes into a
// container's OCI spec. A zero field is "unset": nothing is written and the kernel's or
// the parent's value stays. Where noted, -1 asks explicitly for "no limit".
type Resources struct {
	// CPUShares is the cgroup v1 cpu.shares value [2, 262144]; on v2 it becomes
	// cpu.weight through CPUSharesToWeight.
	CPUShares uint64
	// CPUQuota is the CFS quota in µs per period; -1 removes the limit.
	CPUQuota int64
	// CPUPeriod is the CFS period in µs, [1000, 1000000].
	CPUPeriod uint64
	// CPUSetCPUs and CPUSetMems are cpuset lists such as "0-3,6".
	CPUSetCPUs string
	CPUSetMems string
	// MemoryLimit is in bytes; -1 removes the limit.
	MemoryLimit int64
	// MemorySwapLimit is memory plus swap in bytes (the v1 and OCI meaning); it must not
	// be below MemoryLimit. -1 allows unlimited swap.
	MemorySwapLimit int64
	// PidsLimit caps the number of tasks; -1 removes the limit.
	PidsLimit int64
	// HugepageLimits maps a page size as the kernel spells it ("2MB", "1GB") to a limit
	// in bytes. A node without the hugetlb controller skips them (kubelet only sends
	// them where hugepages exist).
	HugepageLimits map[string]uint64
	// Unified holds raw cgroup v2 interface files and values ("memory.high": "1G").
	// Refused on cgroup v1.
	Unified map[string]string
}

// Kernel bounds of the CPU controller.
const (
	minCPUShares  = 2
	maxCPUShares  = 262144
	maxCPUWeight  = 10000
	minCFSQuota   = 1000    // µs
	minCFSPeriod  = 1000    // µs
	maxCFSPeriod  = 1000000 // µs
	defaultPeriod = 100000  // µs
)

var (
	pageSizeRE    = regexp.MustCompile(`^[1-9][0-9]{0,5}[KMGTP]?B$`)
	unifiedKeyRE  = regexp.MustCompile(`^[a-z][a-z0-9_]*\.[a-z0-9_.]+$`)
	cpuListItemRE = regexp.MustCompile(`^[0-9]{1,5}(-[0-9]{1,5})?$`)
)

// Validate checks every field against what the kernel accepts, so that untrusted
// input fails with errdefs.ErrInvalidArgument before anything is written.
func (r *Resources) Validate() error {
	if r == nil {
		return nil
	}
	if q := r.CPUQuota; q != 0 && q != -1 && q < minCFSQuota {
		return invalid("cpu quota %d: want -1, 0 or at least %d µs", q, minCFSQuota)
	}
	if p := r.CPUPeriod; p != 0 && (p < minCFSPeriod || p > maxCFSPeriod) {
		return invalid("cpu period %d: want 0 or [%d, %d] µs", p, minCFSPeriod, maxCFSPeriod)
	}
	for name, list := range map[string]string{"cpuset cpus": r.CPUSetCPUs, "cpuset mems": r.CPUSetMems} {
		if err := validateCPUList(list); err != nil {
			return invalid("%s %q: %v", name, list, err)
		}
	}
	if err := validateMemory(r.MemoryLimit, r.MemorySwapLimit); err != nil {
		return err
	}
	if r.PidsLimit < -1 {
		return invalid("pids limit %d: want -1, 0 or a positive count", r.PidsLimit)
	}
	for size := range r.HugepageLimits {
		if !pageSizeRE.MatchString(size) {
			return invalid("hugepage size %q: want <number><K|M|G|T|P>B, e.g. 2MB", size)
		}
	}
	for key, value := range r.Unified {
		if !unifiedKeyRE.MatchString(key) || strings.HasPrefix(key, "cgroup.") {
			return invalid("unified key %q: want a controller interface file such as memory.high", key)
		}
		if strings.ContainsRune(value, 0) || len(value) > 4096 {
			return invalid("unified value for %q: has a NUL byte or is too long", key)
		}
	}
	return nil
}

func validateMemory(limit, swap int64) error {
	if limit < -1 {
		return invalid("memory limit %d: want -1, 0 or a positive size", limit)
	}
	if swap < -1 {
		return invalid("memory+swap limit %d: want -1, 0 or a positive size", swap)
	}
	if swap > 0 && (limit <= 0 || swap < limit) {
		return invalid("memory+swap limit %d: needs a memory limit not above it (memory limit %d)", swap, limit)
	}
	return nil
}

// validateCPUList checks a cpuset list such as "0-3,6".
func validateCPUList(list string) error {
	if list == "" {
		return nil
	}
	for _, item := range strings.Split(list, ",") {
		if !cpuListItemRE.MatchString(item) {
			return fmt.Errorf("bad element %q", item)
		}
		if lo, hi, ok := strings.Cut(item, "-"); ok {
			a, _ := strconv.Atoi(lo)
			b, _ := strconv.Atoi(hi)
			if a > b {
				return fmt.Errorf("range %q is reversed", item)
			}
		}
	}
	return nil
}

// FromCRI converts a CRI LinuxContainerResources (nil means none) and validates it.
// OomScoreAdj is not a cgroup setting and is ignored here.
func FromCRI(c *runtimeapi.LinuxContainerResources) (*Resources, error) {
	r := &Resources{}
	if c == nil {
		return r, nil
	}
	if c.CpuShares < 0 {
		return nil, invalid("cpu shares %d: negative", c.CpuShares)
	}
	if c.CpuPeriod < 0 {
		return nil, invalid("cpu period %d: negative", c.CpuPeriod)
	}
	r.CPUShares = uint64(c.CpuShares)
	r.CPUQuota = c.CpuQuota
	r.CPUPeriod = uint64(c.CpuPeriod)
	r.CPUSetCPUs, r.CPUSetMems = c.CpusetCpus, c.CpusetMems
	r.MemoryLimit = c.MemoryLimitInBytes
	r.MemorySwapLimit = c.MemorySwapLimitInBytes
	for _, h := range c.HugepageLimits {
		if h == nil {
			continue
		}
		if r.HugepageLimits == nil {
			r.HugepageLimits = map[string]uint64{}
		}
		if _, dup := r.HugepageLimits[h.PageSize]; dup {
			return nil, invalid("hugepage size %q given twice", h.PageSize)
		}
		r.HugepageLimits[h.PageSize] = h.Limit
	}
	if len(c.Unified) > 0 {
		r.Unified = maps.Clone(c.Unified)
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return r, nil
}

// PodResources computes a pod cgroup's limits from the sandbox config's resources (the
// sum of its containers' resources) and overhead (the runtime class's overhead), the
// way kubelet sizes a pod cgroup: shares and hugepages add up; a CPU quota or memory
// limit exists only if resources has one, and then grows by the overhead's; cpusets
// and unified entries come from resources.
func PodResources(overhead, resources *runtimeapi.LinuxContainerResources) (*Resources, error) {
	res, err := FromCRI(resources)
	if err != nil {
		return nil, err
	}
	over, err := FromCRI(overhead)
	if err != nil {
		return nil, err
	}
	res.CPUShares = min(res.CPUShares+over.CPUShares, maxCPUShares)
	if res.CPUQuota > 0 && over.CPUQuota > 0 {
		period, overPeriod := orDefault(res.CPUPeriod), orDefault(over.CPUPeriod)
		res.CPUQuota += int64(math.Ceil(float64(over.CPUQuota) * float64(period) / float64(overPeriod)))
	}
	if res.MemoryLimit > 0 && over.MemoryLimit > 0 {
		res.MemoryLimit += over.MemoryLimit
		if res.MemorySwapLimit > 0 {
			res.MemorySwapLimit += over.MemoryLimit
		}
	}
	for size, limit := range over.HugepageLimits {
		if res.HugepageLimits == nil {
			res.HugepageLimits = map[string]uint64{}
		}
		res.HugepageLimits[size] += limit
	}
	if err := res.Validate(); err != nil {
		return nil, err
	}
	return res, nil
}

func orDefault(period uint64) uint64 {
	if period == 0 {
		return defaultPeriod
	}
	return period
}

// ToOCI converts r to the OCI runtime-spec form used in a container's
// linux.resources. Unset fields stay nil; a nil r gives nil.
func (r *Resources) ToOCI() *specs.LinuxResources {
	if r == nil {
		return nil
	}
	out := &specs.LinuxResources{}
	if r.CPUShares != 0 || r.CPUQuota != 0 || r.CPUPeriod != 0 || r.CPUSetCPUs != "" || r.CPUSetMems != "" {
		out.CPU = &specs.LinuxCPU{
			Shares: nonZero(r.CPUShares),
			Quota:  nonZero(r.CPUQuota),
			Period: nonZero(r.CPUPeriod),
			Cpus:   r.CPUSetCPUs,
			Mems:   r.CPUSetMems,
		}
	}
	if r.MemoryLimit != 0 || r.MemorySwapLimit != 0 {
		out.Memory = &specs.LinuxMemory{Limit: nonZero(r.MemoryLimit), Swap: nonZero(r.MemorySwapLimit)}
	}
	if r.PidsLimit != 0 {
		out.Pids = &specs.LinuxPids{Limit: nonZero(r.PidsLimit)}
	}
	for _, size := range slices.Sorted(maps.Keys(r.HugepageLimits)) {
		out.HugepageLimits = append(out.HugepageLimits,
			specs.LinuxHugepageLimit{Pagesize: size, Limit: r.HugepageLimits[size]})
	}
	if len(r.Unified) > 0 {
		out.Unified = maps.Clone(r.Unified)
	}
	return out
}

func nonZero[T int64 | uint64](v T) *T {
	if v == 0 {
		return nil
	}
	return &v
}

// CPUSharesToWeight maps cgroup v1 cpu.shares [2, 262144] onto cgroup v2 cpu.weight
// [1, 10000] as runc (opencontainers/cgroups) and kubelet do today: log10 of the weight
// is a quadratic in log2 of the shares, fixed by three points — the minimum (2 → 1),
// the default (1024 → 100) and the maximum (262144 → 10000). 0 stays 0 ("unset").
func CPUSharesToWeight(shares uint64) uint64 {
	switch {
	case shares == 0:
		return 0
	case shares <= minCPUShares:
		return 1
	case shares >= maxCPUShares:
		return maxCPUWeight
	}
	x := math.Log2(float64(shares))
	// With x in [1, 18]: y(1) = 0, y(10) = 2, y(18) = 4.
	y := (x*x + 125*x - 126) / 612
	return uint64(math.Ceil(math.Pow(10, y)))
}
