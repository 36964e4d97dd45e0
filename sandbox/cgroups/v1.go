package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/moby/sys/userns"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// v1Backend manages cgroups on a cgroup v1 node (legacy or hybrid): the pod cgroup
// is a directory in every mounted v1 hierarchy, as kubelet's cgroupfs manager makes
// it, plus one in the controller-less unified tree in hybrid mode.
type v1Backend struct {
	root       string
	hybrid     bool
	subsystems []cgroup1.Subsystem // mounted hierarchies, found once
}

// pather is the part of a cgroup1 subsystem that knows its directory.
type pather interface {
	Path(rel string) string
}

func newV1Backend(root string, hybrid bool) (*v1Backend, error) {
	candidates := []cgroup1.Subsystem{
		cgroup1.NewCpuset(root), cgroup1.NewCpu(root), cgroup1.NewCpuacct(root),
		cgroup1.NewMemory(root), cgroup1.NewPids(root), cgroup1.NewBlkio(root),
		cgroup1.NewFreezer(root), cgroup1.NewNetCls(root), cgroup1.NewNetPrio(root),
		cgroup1.NewPerfEvent(root), cgroup1.NewRdma(root),
		cgroup1.NewNamed(root, "systemd"), cgroup1.NewNamed(root, "misc"),
	}
	if !userns.RunningInUserNS() {
		candidates = append(candidates, cgroup1.NewDevices(root))
	}
	if h, err := cgroup1.NewHugetlb(root); err == nil {
		candidates = append(candidates, h)
	}
	b := &v1Backend{root: root, hybrid: hybrid}
	for _, s := range candidates {
		if fi, err := os.Stat(filepath.Join(root, string(s.Name()))); err == nil && fi.IsDir() {
			b.subsystems = append(b.subsystems, s)
		}
	}
	if len(b.subsystems) == 0 {
		return nil, fmt.Errorf("cgroups: no cgroup v1 controller mounted under %s: %w", root, errdefs.ErrFailedPrecondition)
	}
	return b, nil
}

func (b *v1Backend) hierarchy(names ...cgroup1.Name) cgroup1.Hierarchy {
	return func() ([]cgroup1.Subsystem, error) {
		if len(names) == 0 {
			return b.subsystems, nil
		}
		var out []cgroup1.Subsystem
		for _, s := range b.subsystems {
			for _, n := range names {
				if s.Name() == n {
					out = append(out, s)
				}
			}
		}
		return out, nil
	}
}

func (b *v1Backend) places(rel string) []place {
	var out []place
	for _, s := range b.subsystems {
		out = append(out, place{name: string(s.Name()), dir: s.(pather).Path(rel)})
	}
	if b.hybrid {
		out = append(out, place{name: unifiedDir, dir: filepath.Join(b.root, unifiedDir, rel)})
	}
	return out
}

// dir returns the directory of rel in the hierarchy of controller name, or "" when
// that controller is not mounted.
func (b *v1Backend) dir(name cgroup1.Name, rel string) string {
	for _, s := range b.subsystems {
		if s.Name() == name {
			return s.(pather).Path(rel)
		}
	}
	return ""
}

func (b *v1Backend) check(r *Resources) error {
	if r != nil && len(r.Unified) > 0 {
		return invalid("unified cgroup settings need cgroup v2; this node has %s", map[bool]Mode{true: ModeHybrid, false: ModeLegacy}[b.hybrid])
	}
	return nil
}

func (b *v1Backend) create(rel string, r *Resources) error {
	if b.hybrid {
		if err := os.MkdirAll(filepath.Join(b.root, unifiedDir, rel), 0o755); err != nil {
			return err
		}
	}
	return b.update(rel, r)
}

// update writes r in every hierarchy. cgroup1.New makes missing directories (and
// copies cpuset.cpus/mems down from the parents) and writes CPU, cpuset, pids and
// hugetlb settings; memory and the "no limit" values cgroup1 skips are written here.
func (b *v1Backend) update(rel string, r *Resources) error {
	if _, err := cgroup1.New(cgroup1.StaticPath(rel), v1Spec(r), cgroup1.WithHierarchy(b.hierarchy())); err != nil {
		return err
	}
	if err := b.setMemory(rel, r); err != nil {
		return err
	}
	if r.PidsLimit == -1 {
		dir := b.dir(cgroup1.Pids, rel)
		if dir == "" {
			return fmt.Errorf("pids limit: pids controller not mounted: %w", errdefs.ErrFailedPrecondition)
		}
		return writeFile(dir, "pids.max", "max")
	}
	return nil
}

// v1Spec is the part of r that cgroup1 writes.
func v1Spec(r *Resources) *specs.LinuxResources {
	spec := (&Resources{
		CPUShares: r.CPUShares, CPUQuota: r.CPUQuota, CPUPeriod: r.CPUPeriod,
		CPUSetCPUs: r.CPUSetCPUs, CPUSetMems: r.CPUSetMems,
		HugepageLimits: r.HugepageLimits,
	}).ToOCI()
	if r.PidsLimit > 0 {
		spec.Pids = &specs.LinuxPids{Limit: &r.PidsLimit}
	}
	return spec
}

// setMemory writes the memory and memory+swap limits in an order the kernel accepts:
// the limit may never exceed memory+swap, so memory+swap goes first when it grows past
// the current limit. Without swap accounting (no memsw file) a memory+swap limit equal
// to the memory limit, or unlimited, is what the node does anyway and is skipped.
func (b *v1Backend) setMemory(rel string, r *Resources) error {
	if r.MemoryLimit == 0 && r.MemorySwapLimit == 0 {
		return nil
	}
	dir := b.dir(cgroup1.Memory, rel)
	if dir == "" {
		return fmt.Errorf("memory limit: memory controller not mounted: %w", errdefs.ErrFailedPrecondition)
	}
	limit := func() error {
		if r.MemoryLimit == 0 {
			return nil
		}
		return writeInt(dir, "memory.limit_in_bytes", r.MemoryLimit)
	}
	if r.MemorySwapLimit == 0 {
		return limit()
	}
	swap := func() error { return writeInt(dir, "memory.memsw.limit_in_bytes", r.MemorySwapLimit) }
	if _, err := os.Stat(filepath.Join(dir, "memory.memsw.limit_in_bytes")); errors.Is(err, fs.ErrNotExist) {
		if r.MemorySwapLimit == -1 || r.MemorySwapLimit == r.MemoryLimit {
			swap = func() error { return nil }
		} else {
			return fmt.Errorf("memory+swap limit: swap accounting is off on this node: %w", errdefs.ErrFailedPrecondition)
		}
	}
	current, err := readInt(dir, "memory.limit_in_bytes")
	if err != nil {
		return err
	}
	if r.MemorySwapLimit == -1 || r.MemorySwapLimit >= current {
		if err := swap(); err != nil {
			return err
		}
		return limit()
	}
	if err := limit(); err != nil {
		return err
	}
	return swap()
}

// writeFile writes one cgroup interface file.
func writeFile(dir, name, value string) error {
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
		return fmt.Errorf("write %q to %s: %w", value, p, err)
	}
	return nil
}

func writeInt(dir, name string, v int64) error {
	return writeFile(dir, name, strconv.FormatInt(v, 10))
}

func readInt(dir, name string) (int64, error) {
	p := filepath.Join(dir, name)
	data, err := os.ReadFile(p)
	if err != nil {
		return 0, err
	}
	s := strings.TrimSpace(string(data))
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		// v1 reports "no limit" as a huge number that may not fit an int64.
		if u, uerr := strconv.ParseUint(s, 10, 64); uerr == nil && u > 1<<62 {
			return 1 << 62, nil
		}
		return 0, fmt.Errorf("parse %s: %w", p, err)
	}
	return v, nil
}
