package cgroups

import "fmt"

// Stats is a pod cgroup's usage, for PodSandboxStats.
type Stats struct {
	// CPUUsageNanos is the cumulative CPU time of every task in the cgroup.
	CPUUsageNanos uint64
	// MemoryUsageBytes is the charged memory, page cache included.
	MemoryUsageBytes uint64
	// MemoryWorkingSetBytes is usage less inactive file pages, as kubelet computes it
	// for eviction.
	MemoryWorkingSetBytes uint64
	// PidsCurrent is the number of tasks.
	PidsCurrent uint64
}

// Stats reads the pod cgroup's usage. It works under both drivers; a missing cgroup
// fails with errdefs.ErrNotFound.
func (p *PodCgroup) Stats() (*Stats, error) {
	s, err := p.m.backend.sample(p.path)
	if err != nil {
		return nil, fmt.Errorf("cgroups: stats of %s: %w", p.path, err)
	}
	return s.stats(), nil
}

// stats is the part of the sample that stats report.
func (s *Sample) stats() *Stats {
	return &Stats{
		CPUUsageNanos:         s.CPUUsage,
		MemoryUsageBytes:      s.MemUsage,
		MemoryWorkingSetBytes: s.MemWorkingSet,
		PidsCurrent:           s.Tasks,
	}
}
