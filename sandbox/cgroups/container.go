package cgroups

import (
	"fmt"
	"path/filepath"
)

// Root is where the hierarchies are mounted (/sys/fs/cgroup, or a test's fake).
func (m *Manager) Root() string { return m.root }

// OOMFile is the file whose "oom_kill N" line counts the OOM kills in the cgroup at rel
// (relative to the hierarchy root, as Names.ContainerPath): memory.oom_control on v1,
// memory.events on v2. A container's monitor reads it when the container exits.
func (m *Manager) OOMFile(rel string) string {
	if m.mode.V2() {
		return filepath.Join(m.root, rel, "memory.events")
	}
	return filepath.Join(m.root, "memory", rel, "memory.oom_control")
}

// ContainerStats reads the usage of the cgroup at rel (a container's, as
// Names.ContainerPath). A missing cgroup fails with errdefs.ErrNotFound.
func (m *Manager) ContainerStats(rel string) (*Stats, error) {
	s, err := m.backend.sample(rel)
	if err != nil {
		return nil, fmt.Errorf("cgroups: stats of %s: %w", rel, err)
	}
	return s.stats(), nil
}
