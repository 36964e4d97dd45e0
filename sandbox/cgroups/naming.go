package cgroups

import (
	"fmt"
	"path"
	"strings"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// Driver is kubelet's cgroup driver: it decides how cgroup_parent is spelled and who
// creates the cgroups (berth itself, or systemd on runc's request).
type Driver string

// The cgroup drivers kubelet knows.
const (
	DriverCgroupfs Driver = "cgroupfs"
	DriverSystemd  Driver = "systemd"
)

// Defaults used when kubelet sends an empty cgroup_parent (critest does so with the
// cgroupfs driver). Berth creates no pod cgroup then; containers go straight under the
// default parent.
const (
	DefaultCgroupfsParent = "/berth"
	DefaultSystemdParent  = "system.slice"
)

// ScopePrefix is the prefix of the systemd scope runc creates for a container:
// berth-<container id>.scope.
const ScopePrefix = "berth"

// maxUnitName is systemd's limit on a unit name (UNIT_NAME_MAX - 1).
const maxUnitName = 255

// maxContainerID bounds container ids placed in cgroup names.
const maxContainerID = 128

// ParseDriver accepts "cgroupfs" or "systemd".
func ParseDriver(s string) (Driver, error) {
	switch d := Driver(s); d {
	case DriverCgroupfs, DriverSystemd:
		return d, nil
	}
	return "", invalid("unknown cgroup driver %q (want %q or %q)", s, DriverCgroupfs, DriverSystemd)
}

// Names is where a container of a pod lives.
type Names struct {
	// PodPath is the pod cgroup's path relative to the hierarchy root (e.g.
	// /kubepods/burstable/pod123 or /kubepods.slice/…/kubepods-burstable-pod123.slice),
	// empty when the pod has no cgroup_parent.
	PodPath string
	// CgroupsPath is the value of the OCI spec's linux.cgroupsPath for the container.
	CgroupsPath string
	// ContainerPath is the container cgroup's path relative to the hierarchy root, as
	// the OCI runtime will create it; stats readers use it.
	ContainerPath string
}

// ContainerNames computes the cgroup names of container containerID in a pod whose
// cgroup_parent is parent. Both inputs come from kubelet and are validated; errors wrap
// errdefs.ErrInvalidArgument.
func ContainerNames(driver Driver, parent, containerID string) (Names, error) {
	if err := validateContainerID(containerID); err != nil {
		return Names{}, err
	}
	podPath, err := PodPath(driver, parent)
	if err != nil {
		return Names{}, err
	}
	switch driver {
	case DriverCgroupfs:
		base := podPath
		if base == "" {
			base = DefaultCgroupfsParent
		}
		p := path.Join(base, containerID)
		return Names{PodPath: podPath, CgroupsPath: p, ContainerPath: p}, nil
	default: // DriverSystemd; PodPath rejected anything else.
		slice, base := SliceName(parent), podPath
		if slice == "" {
			slice = DefaultSystemdParent
			if base, err = ExpandSlice(slice); err != nil {
				return Names{}, err
			}
		}
		return Names{
			PodPath:       podPath,
			CgroupsPath:   slice + ":" + ScopePrefix + ":" + containerID,
			ContainerPath: path.Join(base, ScopePrefix+"-"+containerID+".scope"),
		}, nil
	}
}

// PodPath returns the pod cgroup's path relative to the hierarchy root for a validated
// cgroup_parent, or "" when parent is empty.
func PodPath(driver Driver, parent string) (string, error) {
	if err := ValidateParent(driver, parent); err != nil {
		return "", err
	}
	if parent == "" {
		return "", nil
	}
	if driver == DriverSystemd {
		return ExpandSlice(SliceName(parent))
	}
	return parent, nil
}

// SliceName is the systemd unit name of a cgroup_parent given to the systemd driver.
// Kubelet sends the unit name (kubepods-burstable-pod1.slice); critest and other
// clients send its path (/test.slice, /kubepods.slice/kubepods-burstable.slice/…),
// whose last element names the unit, as containerd and CRI-O read it.
func SliceName(parent string) string {
	if i := strings.LastIndexByte(parent, '/'); i >= 0 {
		return parent[i+1:]
	}
	return parent
}

// ValidateParent checks a cgroup_parent sent by kubelet for driver: an absolute, clean
// path without ".." for cgroupfs; a well-formed slice name for systemd. An empty parent
// is valid (it selects the default parent).
func ValidateParent(driver Driver, parent string) error {
	if parent == "" {
		if _, err := ParseDriver(string(driver)); err != nil {
			return err
		}
		return nil
	}
	switch driver {
	case DriverCgroupfs:
		return validateCgroupfsParent(parent)
	case DriverSystemd:
		if err := validateSlicePath(parent); err != nil {
			return err
		}
		p, err := ExpandSlice(SliceName(parent))
		if err == nil && p == "/" {
			return invalid("cgroup parent %q: the root slice cannot be a pod cgroup", parent)
		}
		return err
	}
	_, err := ParseDriver(string(driver))
	return err
}

// validateSlicePath checks the elements of a systemd cgroup_parent given as a path
// (/a.slice/a-b.slice): each must be a slice name. A bare unit name passes.
func validateSlicePath(parent string) error {
	if !strings.Contains(parent, "/") {
		return nil
	}
	elems := strings.Split(strings.TrimPrefix(parent, "/"), "/")
	for _, e := range elems {
		if _, err := ExpandSlice(e); err != nil {
			return invalid("cgroup parent %q: element %q is not a slice", parent, e)
		}
	}
	return nil
}

func validateCgroupfsParent(parent string) error {
	if !strings.HasPrefix(parent, "/") {
		return invalid("cgroup parent %q: not an absolute path", parent)
	}
	if parent == "/" {
		return invalid("cgroup parent %q: the root cgroup cannot be a pod cgroup", parent)
	}
	if path.Clean(parent) != parent {
		return invalid("cgroup parent %q: not a clean path", parent)
	}
	for _, part := range strings.Split(parent[1:], "/") {
		if err := validateCgroupName(part); err != nil {
			return invalid("cgroup parent %q: %v", parent, err)
		}
	}
	return nil
}

// validateCgroupName checks one path element of a cgroupfs path: no "..", no control
// characters, and not a name the kernel reserves for interface files.
func validateCgroupName(name string) error {
	switch {
	case name == "." || name == "..":
		return fmt.Errorf("element %q is not allowed", name)
	case len(name) > 255:
		return fmt.Errorf("element longer than 255 bytes")
	case strings.HasPrefix(name, "cgroup."):
		return fmt.Errorf("element %q looks like a cgroup interface file", name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("element %q has a control character", name)
		}
	}
	return nil
}

// ExpandSlice turns a systemd slice name into its path under the hierarchy root: each
// dash-separated prefix is a parent slice, so a-b-c.slice lives at
// /a.slice/a-b.slice/a-b-c.slice, and -.slice is the root. Names must end in .slice,
// use only [A-Za-z0-9_.] between single dashes (no ':', which separates the fields of
// runc's slice:prefix:name) (systemd escapes such as \x2d are
// refused: kubelet never produces them), and fit systemd's unit name limit.
func ExpandSlice(slice string) (string, error) {
	const suffix = ".slice"
	if slice == "-"+suffix {
		return "/", nil
	}
	if len(slice) > maxUnitName {
		return "", invalid("slice %q: longer than %d bytes", slice, maxUnitName)
	}
	name, ok := strings.CutSuffix(slice, suffix)
	if !ok || name == "" {
		return "", invalid("slice %q: a systemd cgroup parent must be a name ending in %q", slice, suffix)
	}
	for _, r := range name {
		if !isSliceRune(r) {
			return "", invalid("slice %q: character %q is not allowed", slice, r)
		}
	}
	var b strings.Builder
	prefix := ""
	for _, part := range strings.Split(name, "-") {
		if part == "" {
			return "", invalid("slice %q: empty component (leading, trailing or double dash)", slice)
		}
		if prefix != "" {
			prefix += "-"
		}
		prefix += part
		b.WriteString("/" + prefix + suffix)
	}
	return b.String(), nil
}

func isSliceRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
		r == '_' || r == '.' || r == '-'
}

// validateContainerID keeps container ids to characters safe both as a cgroupfs path
// element and inside a systemd scope name.
func validateContainerID(id string) error {
	if id == "" || len(id) > maxContainerID {
		return invalid("container id %q: empty or longer than %d bytes", id, maxContainerID)
	}
	if id == "." || id == ".." || id[0] == '-' || id[0] == '.' {
		return invalid("container id %q: not allowed", id)
	}
	for _, r := range id {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			r == '_' || r == '.' || r == '-'
		if !ok {
			return invalid("container id %q: character %q is not allowed", id, r)
		}
	}
	return nil
}

// invalid builds an error of class errdefs.ErrInvalidArgument.
func invalid(format string, args ...any) error {
	return errdefs.InvalidArgument(fmt.Sprintf(format, args...))
}
