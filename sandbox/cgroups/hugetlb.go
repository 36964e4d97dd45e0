package cgroups

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// HugetlbAvailable reports whether the hugetlb controller is on the hierarchy the OCI
// runtime uses for this node's layout: the v1 hugetlb mount on a v1 or hybrid node (a
// hugetlb controller on the hybrid node's unified tree does not count: runc limits
// through v1 there), the root's cgroup.controllers on v2. It is probed once, when the
// Manager is made.
func (m *Manager) HugetlbAvailable() bool { return m.hugetlb }

// WithoutUnavailable returns r without the settings this node cannot apply: the hugepage
// limits when the hugetlb controller is missing, as containerd's
// tolerate_missing_hugetlb_controller does. kubelet sends a limit for every page size the
// node offers, and runc fails the whole container ("cannot set hugetlb limit") when it
// cannot write one. r itself is not changed; a nil r stays nil.
func (m *Manager) WithoutUnavailable(r *Resources) *Resources {
	if r == nil || m.hugetlb || len(r.HugepageLimits) == 0 {
		return r
	}
	out := *r
	out.HugepageLimits = nil
	return &out
}

// probeHugetlb tells whether the hugetlb controller is usable under root in mode.
func probeHugetlb(root string, mode Mode) bool {
	if mode.V2() {
		data, err := os.ReadFile(filepath.Join(root, "cgroup.controllers"))
		return err == nil && slices.Contains(strings.Fields(string(data)), "hugetlb")
	}
	fi, err := os.Stat(filepath.Join(root, "hugetlb"))
	return err == nil && fi.IsDir()
}
