package spec

import (
	"fmt"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// Opt changes one part of a spec. Options are applied in order; a later
// option may override what an earlier one set.
type Opt func(*specs.Spec) error

// ociVersion is what the spec declares: crun 1.8 rejects "1.3.0", and
// nothing Berth emits needs a newer version than 1.0.2.
const ociVersion = "1.0.2"

// defaultPath is the PATH a container gets when neither the image nor the
// CRI config sets one.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// defaultCaps is containerd's (and Docker's) default capability set.
var defaultCaps = []string{
	"CAP_CHOWN",
	"CAP_DAC_OVERRIDE",
	"CAP_FSETID",
	"CAP_FOWNER",
	"CAP_MKNOD",
	"CAP_NET_RAW",
	"CAP_SETGID",
	"CAP_SETUID",
	"CAP_SETFCAP",
	"CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT",
	"CAP_KILL",
	"CAP_AUDIT_WRITE",
}

// defaultMaskedPaths and defaultReadonlyPaths are the lists containerd and
// Docker use.
var defaultMaskedPaths = []string{
	"/proc/acpi",
	"/proc/asound",
	"/proc/kcore",
	"/proc/keys",
	"/proc/latency_stats",
	"/proc/timer_list",
	"/proc/timer_stats",
	"/proc/sched_debug",
	"/proc/scsi",
	"/sys/firmware",
	"/sys/devices/virtual/powercap",
}

var defaultReadonlyPaths = []string{
	"/proc/bus",
	"/proc/fs",
	"/proc/irq",
	"/proc/sys",
	"/proc/sysrq-trigger",
}

// Build starts from the base spec and applies opts in order.
func Build(opts ...Opt) (*specs.Spec, error) {
	s := base()
	for i, o := range opts {
		if o == nil {
			continue
		}
		if err := o(s); err != nil {
			return nil, fmt.Errorf("spec option %d: %w", i, err)
		}
	}
	return s, nil
}

// base is a minimal Linux container: standard mounts, the default
// capabilities, masked and read-only paths, no_new_privs and fresh
// namespaces for everything but the network, IPC, UTS and PID, which
// WithNamespaces decides.
func base() *specs.Spec {
	return &specs.Spec{
		Version: ociVersion,
		Root:    &specs.Root{Path: "rootfs"},
		Process: &specs.Process{
			Cwd:             "/",
			Env:             []string{defaultPath},
			NoNewPrivileges: true,
			Capabilities:    capSet(defaultCaps),
		},
		Mounts: baseMounts(),
		Linux: &specs.Linux{
			MaskedPaths:   append([]string(nil), defaultMaskedPaths...),
			ReadonlyPaths: append([]string(nil), defaultReadonlyPaths...),
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace},
				{Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace},
				{Type: specs.MountNamespace},
				{Type: specs.NetworkNamespace},
			},
		},
	}
}

func capSet(caps []string) *specs.LinuxCapabilities {
	c := func() []string { return append([]string(nil), caps...) }
	return &specs.LinuxCapabilities{
		Bounding:  c(),
		Effective: c(),
		Permitted: c(),
	}
}

func baseMounts() []specs.Mount {
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
	}
}
