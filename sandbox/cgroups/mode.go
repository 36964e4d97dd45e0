package cgroups

import (
	"fmt"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// DefaultRoot is where the cgroup hierarchies are mounted on a normal node.
const DefaultRoot = "/sys/fs/cgroup"

// Mode is the cgroup layout of a node.
type Mode int

// The layouts. ModeUnknown is the zero value: "detect it".
const (
	ModeUnknown Mode = iota
	// ModeLegacy: cgroup v1 only, one mount per controller under the root.
	ModeLegacy
	// ModeHybrid: cgroup v1 controllers, plus a controller-less cgroup2 at root/unified.
	// Resource control is v1's; processes are also tracked in the unified tree.
	ModeHybrid
	// ModeUnified: cgroup v2 mounted at the root.
	ModeUnified
)

func (m Mode) String() string {
	switch m {
	case ModeLegacy:
		return "v1"
	case ModeHybrid:
		return "hybrid"
	case ModeUnified:
		return "v2"
	}
	return "unknown"
}

// V2 reports whether resources are controlled through cgroup v2.
func (m Mode) V2() bool { return m == ModeUnified }

// unifiedDir is the name of the cgroup2 mount under the root in hybrid mode.
const unifiedDir = "unified"

// statfsType returns the filesystem magic number of path; tests replace it.
type statfsType func(path string) (int64, error)

func realStatfs(path string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, err
	}
	return int64(st.Type), nil
}

// DetectMode tells the cgroup layout mounted at root ("" means DefaultRoot) from the
// filesystem types, as containerd's cgroups.Mode does for /sys/fs/cgroup: cgroup2 at
// the root is v2; otherwise a cgroup2 at root/unified is hybrid, and anything else
// with cgroup v1 controllers is v1. A root that is neither fails with
// errdefs.ErrFailedPrecondition.
func DetectMode(root string) (Mode, error) {
	return detectMode(root, realStatfs)
}

func detectMode(root string, statfs statfsType) (Mode, error) {
	if root == "" {
		root = DefaultRoot
	}
	magic, err := statfs(root)
	if err != nil {
		return ModeUnknown, fmt.Errorf("cgroups: statfs %s: %v: %w", root, err, errdefs.ErrFailedPrecondition)
	}
	if magic == unix.CGROUP2_SUPER_MAGIC {
		return ModeUnified, nil
	}
	if magic == unix.CGROUP_SUPER_MAGIC {
		// A cgroup v1 hierarchy mounted directly at the root (unusual but legal).
		return ModeLegacy, nil
	}
	if magic, err := statfs(filepath.Join(root, unifiedDir)); err == nil && magic == unix.CGROUP2_SUPER_MAGIC {
		return ModeHybrid, nil
	}
	for _, controller := range []string{"memory", "cpu", "pids"} {
		if magic, err := statfs(filepath.Join(root, controller)); err == nil && magic == unix.CGROUP_SUPER_MAGIC {
			return ModeLegacy, nil
		}
	}
	return ModeUnknown, fmt.Errorf("cgroups: no cgroup v1 or v2 hierarchy mounted at %s: %w", root, errdefs.ErrFailedPrecondition)
}
