package spec

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// WithMounts adds the CRI's bind mounts. A CRI mount replaces any earlier
// mount at the same destination (e.g. the base /dev/shm with the pod's).
// Each gets rbind plus ro or rw and its propagation: private → rprivate,
// host-to-container → rslave, bidirectional → rshared; the rootfs
// propagation is raised to match so the flag takes effect (the host side of
// the source must be shared or slave too: that is the caller's job).
// recursive_read_only adds "rro" and needs readonly, private propagation
// and rroSupported (runc ≥ 1.1 on Linux ≥ 5.12). Container and host paths
// must be absolute; image volumes are not handled here. Mappings make an idmapped mount.
// mount_options (noexec, nodev, nosuid, atime flags, ...) follow, from the
// set bindFlagOptions allows: per-mount flags a bind mount can carry.
func WithMounts(criMounts []*runtimeapi.Mount, rroSupported bool) Opt {
	return func(s *specs.Spec) error {
		var added []specs.Mount
		seen := map[string]bool{}
		for _, m := range criMounts {
			if m == nil {
				continue
			}
			om, err := bindMount(m, rroSupported)
			if err != nil {
				return err
			}
			if seen[om.Destination] {
				return errdefs.InvalidArgument("duplicate mount at " + om.Destination)
			}
			seen[om.Destination] = true
			added = append(added, om)
			switch m.GetPropagation() {
			case runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL:
				s.Linux.RootfsPropagation = "rshared"
			case runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER:
				if s.Linux.RootfsPropagation != "rshared" {
					s.Linux.RootfsPropagation = "rslave"
				}
			}
		}
		// Parents before children, so that a mount at /a/b is not hidden by
		// a later one at /a.
		slices.SortStableFunc(added, func(a, b specs.Mount) int {
			return strings.Count(a.Destination, "/") - strings.Count(b.Destination, "/")
		})
		s.Mounts = slices.DeleteFunc(slices.Clone(s.Mounts), func(m specs.Mount) bool { return seen[path.Clean(m.Destination)] })
		s.Mounts = append(s.Mounts, added...)
		return nil
	}
}

func bindMount(m *runtimeapi.Mount, rroSupported bool) (specs.Mount, error) {
	dst, src := m.GetContainerPath(), m.GetHostPath()
	if m.GetImage() != nil && m.GetImage().GetImage() != "" {
		return specs.Mount{}, fmt.Errorf("%w: image volume at %s", errdefs.ErrUnimplemented, dst)
	}
	if !path.IsAbs(dst) {
		return specs.Mount{}, errdefs.InvalidArgument(fmt.Sprintf("mount container path %q is not absolute", dst))
	}
	if !path.IsAbs(src) {
		return specs.Mount{}, errdefs.InvalidArgument(fmt.Sprintf("mount host path %q is not absolute", src))
	}
	opts := []string{"rbind"}
	switch m.GetPropagation() {
	case runtimeapi.MountPropagation_PROPAGATION_PRIVATE:
		opts = append(opts, "rprivate")
	case runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER:
		opts = append(opts, "rslave")
	case runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL:
		opts = append(opts, "rshared")
	default:
		return specs.Mount{}, errdefs.InvalidArgument(fmt.Sprintf("mount %s: unknown propagation %v", dst, m.GetPropagation()))
	}
	if m.GetReadonly() {
		opts = append(opts, "ro")
	} else {
		opts = append(opts, "rw")
	}
	if m.GetRecursiveReadOnly() {
		switch {
		case !m.GetReadonly():
			return specs.Mount{}, errdefs.InvalidArgument("mount " + dst + ": recursive read-only needs readonly")
		case m.GetPropagation() != runtimeapi.MountPropagation_PROPAGATION_PRIVATE:
			return specs.Mount{}, errdefs.InvalidArgument("mount " + dst + ": recursive read-only needs private propagation")
		case !rroSupported:
			return specs.Mount{}, errdefs.InvalidArgument("mount " + dst + ": recursive read-only is not supported by this kernel or OCI runtime")
		}
		opts = append(opts, "rro")
	}
	extra, err := bindOptions(dst, m.GetMountOptions())
	if err != nil {
		return specs.Mount{}, err
	}
	opts = append(opts, extra...)
	uids, gids, err := mountIDMaps(m)
	if err != nil {
		return specs.Mount{}, err
	}
	return specs.Mount{
		Destination: path.Clean(dst), Type: "bind", Source: path.Clean(src), Options: opts,
		UIDMappings: uids, GIDMappings: gids,
	}, nil
}

// mountIDMaps are an idmapped mount's maps (runc >= 1.2 makes the mount): a file owned
// by id c on the host's disk is owned by the mapped id inside, as with the CRI's user
// namespace maps. The OCI runtime needs both maps or neither.
func mountIDMaps(m *runtimeapi.Mount) (uids, gids []specs.LinuxIDMapping, err error) {
	if len(m.GetUidMappings()) == 0 && len(m.GetGidMappings()) == 0 {
		return nil, nil, nil
	}
	if len(m.GetUidMappings()) == 0 || len(m.GetGidMappings()) == 0 {
		return nil, nil, errdefs.InvalidArgument("mount " + m.GetContainerPath() + ": an idmapped mount needs both uid and gid mappings")
	}
	conv := func(in []*runtimeapi.IDMapping) ([]specs.LinuxIDMapping, error) {
		out := make([]specs.LinuxIDMapping, 0, len(in))
		for _, r := range in {
			if r.GetLength() == 0 || uint64(r.GetContainerId())+uint64(r.GetLength()) > 1<<32-1 ||
				uint64(r.GetHostId())+uint64(r.GetLength()) > 1<<32-1 {
				return nil, errdefs.InvalidArgument(fmt.Sprintf("mount %s: id mapping %d:%d:%d is empty or passes the last id",
					m.GetContainerPath(), r.GetContainerId(), r.GetHostId(), r.GetLength()))
			}
			out = append(out, specs.LinuxIDMapping{ContainerID: r.GetContainerId(), HostID: r.GetHostId(), Size: r.GetLength()})
		}
		return out, nil
	}
	if uids, err = conv(m.GetUidMappings()); err != nil {
		return nil, nil, err
	}
	gids, err = conv(m.GetGidMappings())
	return uids, gids, err
}

// bindFlagOptions are the mount_options a CRI mount may carry: per-mount flags
// the OCI runtime can apply to a bind mount (a remount with MS_BIND). Read-only
// and propagation have their own CRI fields; filesystem data options
// (size=, mode=, ...) mean nothing to a bind mount.
var bindFlagOptions = map[string]bool{
	"noexec": true, "exec": true, "nodev": true, "dev": true, "nosuid": true, "suid": true,
	"noatime": true, "atime": true, "relatime": true, "norelatime": true,
	"strictatime": true, "nostrictatime": true, "nodiratime": true, "diratime": true,
}

// bindOptions checks the CRI's mount_options of the mount at dst, in order,
// without duplicates.
func bindOptions(dst string, in []string) ([]string, error) {
	var out []string
	for _, o := range in {
		o = strings.TrimSpace(o)
		if !bindFlagOptions[o] {
			return nil, errdefs.InvalidArgument(fmt.Sprintf("mount %s: option %q is not a bind mount flag (allowed: noexec, nodev, nosuid, their opposites and the atime flags)", dst, o))
		}
		if !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	return out, nil
}
