package spec

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// allCaps is every capability Linux defines up to 6.x, in number order.
var allCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
	"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
	"CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// grantableCaps is every capability in this process's bounding set: what "all
// capabilities" (privileged, add ALL) can mean for a container berthd starts. A node
// may run berthd without some (this project's CI lacks CAP_SYS_RESOURCE), and the OCI
// runtime then fails the whole start with "unable to apply caps".
var grantableCaps = sync.OnceValue(func() []string { return boundedBy(readCapBnd()) })

// readCapBnd reads CapBnd from /proc/self/status; every bit set when unreadable.
func readCapBnd() uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return ^uint64(0)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "CapBnd:"); ok {
			if mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64); err == nil {
				return mask
			}
		}
	}
	return ^uint64(0)
}

// boundedBy lists the capabilities whose bit (their number, their index in allCaps) is
// set in mask.
func boundedBy(mask uint64) []string {
	var out []string
	for i, c := range allCaps {
		if mask&(1<<uint(i)) != 0 {
			out = append(out, c)
		}
	}
	return out
}

// normalizeCap turns "net_admin", "NET_ADMIN" or "CAP_NET_ADMIN" into
// "CAP_NET_ADMIN"; "ALL" stays "ALL". Unknown names are InvalidArgument.
func normalizeCap(c string) (string, error) {
	u := strings.ToUpper(strings.TrimSpace(c))
	if u == "ALL" {
		return u, nil
	}
	if !strings.HasPrefix(u, "CAP_") {
		u = "CAP_" + u
	}
	if !slices.Contains(allCaps, u) {
		return "", errdefs.InvalidArgument("unknown capability " + c)
	}
	return u, nil
}

// WithCapabilities owns process.capabilities. Privileged gets every
// capability. Otherwise it starts from the default set; "ALL" in add starts
// from every capability, "ALL" in drop from none; then the named adds are
// added and the named drops removed (a drop wins over an add). The same set
// goes to the bounding, effective and permitted sets; inheritable and
// ambient stay empty.
func WithCapabilities(privileged bool, add, drop []string) Opt {
	return func(s *specs.Spec) error {
		if privileged {
			s.Process.Capabilities = capSet(grantableCaps())
			return nil
		}
		addN, addAll, err := normalizeCaps(add)
		if err != nil {
			return err
		}
		dropN, dropAll, err := normalizeCaps(drop)
		if err != nil {
			return err
		}
		caps := slices.Clone(defaultCaps)
		if addAll {
			caps = slices.Clone(grantableCaps())
		}
		if dropAll {
			caps = nil
		}
		for _, c := range addN {
			if !slices.Contains(caps, c) {
				caps = append(caps, c)
			}
		}
		caps = slices.DeleteFunc(caps, func(c string) bool { return slices.Contains(dropN, c) })
		s.Process.Capabilities = capSet(caps)
		return nil
	}
}

// WithAmbientCapabilities adds the CRI's add_ambient_capabilities to every
// set: bounding, effective, permitted, inheritable and ambient, so that a
// process running as a non-root user keeps them across execve. Apply it
// after WithCapabilities and WithPrivileged. "ALL" is refused: the ambient
// set is for named capabilities a workload needs, never a blanket grant.
func WithAmbientCapabilities(ambient []string) Opt {
	return func(s *specs.Spec) error {
		names, all, err := normalizeCaps(ambient)
		if err != nil {
			return err
		}
		if all {
			return errdefs.InvalidArgument("ambient capabilities cannot be ALL: name each one")
		}
		if len(names) == 0 {
			return nil
		}
		c := s.Process.Capabilities
		if c == nil {
			c = &specs.LinuxCapabilities{}
			s.Process.Capabilities = c
		}
		for _, set := range []*[]string{&c.Bounding, &c.Effective, &c.Permitted, &c.Inheritable, &c.Ambient} {
			for _, n := range names {
				if !slices.Contains(*set, n) {
					*set = append(*set, n)
				}
			}
		}
		return nil
	}
}

func normalizeCaps(in []string) (named []string, all bool, err error) {
	for _, c := range in {
		n, err := normalizeCap(c)
		if err != nil {
			return nil, false, err
		}
		if n == "ALL" {
			all = true
			continue
		}
		named = append(named, n)
	}
	return named, all, nil
}

// WithPrivileged gives every capability, clears the masked and read-only
// paths and makes /sys and the cgroup mount writable. Apply it after
// WithMaskedPaths/WithReadonlyPaths so they cannot undo it. Device access is
// WithDevices' business.
func WithPrivileged() Opt {
	return func(s *specs.Spec) error {
		s.Process.Capabilities = capSet(grantableCaps())
		s.Linux.MaskedPaths = nil
		s.Linux.ReadonlyPaths = nil
		for i := range s.Mounts {
			m := &s.Mounts[i]
			if m.Destination == "/sys" || m.Destination == "/sys/fs/cgroup" {
				m.Options = slices.DeleteFunc(slices.Clone(m.Options), func(o string) bool { return o == "ro" })
				m.Options = append(m.Options, "rw")
			}
		}
		return nil
	}
}

// WithReadonlyRootfs sets root.readonly.
func WithReadonlyRootfs(ro bool) Opt {
	return func(s *specs.Spec) error {
		s.Root.Readonly = ro
		return nil
	}
}

// WithMaskedPaths replaces linux.maskedPaths with the CRI's list. kubelet
// sends the defaults itself for the Default procMount and an empty list for
// Unmasked; over gRPC an empty repeated field arrives as nil, which this
// option cannot tell from "not set", so nil keeps the base defaults (as
// containerd does) and only a non-nil list replaces them.
func WithMaskedPaths(paths []string) Opt {
	return func(s *specs.Spec) error {
		if paths == nil {
			return nil
		}
		if err := allAbsolute(paths); err != nil {
			return err
		}
		s.Linux.MaskedPaths = slices.Clone(paths)
		return nil
	}
}

// WithReadonlyPaths is WithMaskedPaths for linux.readonlyPaths.
func WithReadonlyPaths(paths []string) Opt {
	return func(s *specs.Spec) error {
		if paths == nil {
			return nil
		}
		if err := allAbsolute(paths); err != nil {
			return err
		}
		s.Linux.ReadonlyPaths = slices.Clone(paths)
		return nil
	}
}

func allAbsolute(paths []string) error {
	for _, p := range paths {
		if !strings.HasPrefix(p, "/") {
			return errdefs.InvalidArgument("path " + p + " is not absolute")
		}
	}
	return nil
}

// WithAppArmorProfile sets process.apparmorProfile, the profile the OCI runtime
// confines the process with ("" for none; sandbox/apparmor decides the name).
func WithAppArmorProfile(name string) Opt {
	return func(s *specs.Spec) error {
		s.Process.ApparmorProfile = name
		return nil
	}
}
