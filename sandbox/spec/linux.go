package spec

import (
	"path"
	"slices"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/sandbox/cgroups"
)

// PIDMode says which PID namespace a container gets.
type PIDMode int

const (
	// PIDContainer gives the container its own PID namespace.
	PIDContainer PIDMode = iota
	// PIDPod joins the pod's PID namespace (the pause process's).
	PIDPod
	// PIDHost uses the host's PID namespace.
	PIDHost
)

// WithNamespaces owns the network, IPC, UTS and PID entries of
// linux.namespaces. netns, ipcns and utsns are paths to the pod's pinned
// namespaces; an empty path means the host's namespace, which in OCI terms
// is no entry at all. pauseNS is the pod's PID namespace path, used only
// with PIDPod. Mount (and any other) namespace entries are left alone.
func WithNamespaces(netns, ipcns, utsns string, pid PIDMode, pauseNS string) Opt {
	return func(s *specs.Spec) error {
		want := map[specs.LinuxNamespaceType]string{
			specs.NetworkNamespace: netns,
			specs.IPCNamespace:     ipcns,
			specs.UTSNamespace:     utsns,
		}
		for t, p := range want {
			if p != "" && !path.IsAbs(p) {
				return errdefs.InvalidArgument(string(t) + " namespace path " + p + " is not absolute")
			}
		}
		switch pid {
		case PIDContainer:
		case PIDPod:
			if !path.IsAbs(pauseNS) {
				return errdefs.InvalidArgument("pod PID namespace path " + pauseNS + " is not absolute")
			}
		case PIDHost:
		default:
			return errdefs.InvalidArgument("unknown PID mode")
		}
		ns := slices.DeleteFunc(slices.Clone(s.Linux.Namespaces), func(n specs.LinuxNamespace) bool {
			_, owned := want[n.Type]
			return owned || n.Type == specs.PIDNamespace
		})
		for _, t := range []specs.LinuxNamespaceType{specs.NetworkNamespace, specs.IPCNamespace, specs.UTSNamespace} {
			if p := want[t]; p != "" {
				ns = append(ns, specs.LinuxNamespace{Type: t, Path: p})
			}
		}
		switch pid {
		case PIDContainer:
			ns = append(ns, specs.LinuxNamespace{Type: specs.PIDNamespace})
		case PIDPod:
			ns = append(ns, specs.LinuxNamespace{Type: specs.PIDNamespace, Path: pauseNS})
		}
		s.Linux.Namespaces = ns
		return nil
	}
}

// WithResources validates r and writes it as linux.resources, keeping the
// device cgroup rules another option set. A nil r clears the limits.
func WithResources(r *cgroups.Resources) Opt {
	return func(s *specs.Spec) error {
		var devices []specs.LinuxDeviceCgroup
		if s.Linux.Resources != nil {
			devices = s.Linux.Resources.Devices
		}
		if r == nil {
			if devices == nil {
				s.Linux.Resources = nil
			} else {
				s.Linux.Resources = &specs.LinuxResources{Devices: devices}
			}
			return nil
		}
		if err := r.Validate(); err != nil {
			return err
		}
		out := r.ToOCI()
		out.Devices = devices
		s.Linux.Resources = out
		return nil
	}
}

// WithCgroupsPath sets linux.cgroupsPath: an absolute path for the cgroupfs
// driver, or slice:prefix:name for systemd.
func WithCgroupsPath(p string) Opt {
	return func(s *specs.Spec) error {
		if p != "" && !path.IsAbs(p) && strings.Count(p, ":") != 2 {
			return errdefs.InvalidArgument("cgroups path " + p + " is neither absolute nor slice:prefix:name")
		}
		s.Linux.CgroupsPath = p
		return nil
	}
}

// WithUserNamespace joins the user namespace pinned at p (a user-namespaced pod's); ""
// leaves the container in the node's. The runtime reads the maps from the namespace
// itself (runc >= 1.2), so the spec carries none.
func WithUserNamespace(p string) Opt {
	return func(s *specs.Spec) error {
		if p == "" {
			return nil
		}
		if !path.IsAbs(p) {
			return errdefs.InvalidArgument("user namespace path " + p + " is not absolute")
		}
		s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.UserNamespace })
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace, Path: p})
		return nil
	}
}
