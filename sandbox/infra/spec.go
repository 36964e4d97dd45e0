package infra

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ociVersion is the runtime-spec version the pause spec is written against: the oldest
// that has everything it uses, so that every runc ≥ 1.0 takes it.
const ociVersion = "1.0.2"

// DefaultID is the uid and gid of pause when the pod names none: nobody needs to own
// anything it touches (it touches nothing), so it runs as the overflow ids, like the
// Kubernetes pause image.
const DefaultID = 65535

// SpecOptions are the pod-specific parts of the pause container's spec.
type SpecOptions struct {
	// Rootfs is berth's pause rootfs (sandbox/pause), shared by every pod: mounted
	// read-only.
	Rootfs string
	// Args is pause's command line.
	Args []string
	// NetNS, IPCNS and UTSNS are the pod's pinned namespaces; "" leaves pause in the
	// node's namespace of that kind.
	NetNS, IPCNS, UTSNS string
	// UserNS is the pod's pinned user namespace, "" for the node's. PauseID is then the
	// uid and gid pause runs as inside it (the overflow id when the namespace maps it).
	UserNS  string
	PauseID uint32
	// CgroupsPath is the OCI linux.cgroupsPath of the pause container.
	CgroupsPath string
	// OOMScoreAdj is pause's oom_score_adj, already clamped to what berthd may set.
	OOMScoreAdj int
	// User is who pause runs as, from the pod's security context; nil is the overflow
	// ids (65535).
	User *specs.User
	// Seccomp is the pod's seccomp filter for pause; nil is none.
	Seccomp *specs.LinuxSeccomp
}

// maskedPaths hide kernel interfaces under /proc (the set every runtime masks).
var maskedPaths = []string{
	"/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
	"/proc/latency_stats", "/proc/sched_debug", "/proc/scsi", "/proc/timer_list",
	"/proc/timer_stats", "/sys/firmware",
}

var readonlyPaths = []string{
	"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
}

// Spec returns the OCI spec of a pod's pause container. It is as small as the OCI
// runtime allows: a new PID and mount namespace (pause is PID 1 of the pod), the pod's
// pinned network, IPC and UTS namespaces (and user namespace) joined by path, the read-only pause rootfs with
// /proc (runc needs it) and a tiny /dev, no capabilities at all, no new privileges, no
// device access, an unprivileged user, and the standard masked and read-only paths.
// Seccomp is left out unless the pod's security context asks for a profile: a process
// with no capabilities that only waits for signals gains little from a filter, and
// loading one costs every pod start. The pod's run_as_user, run_as_group and
// supplemental groups, when set, replace the overflow ids.
func Spec(o SpecOptions) *specs.Spec {
	adj := o.OOMScoreAdj
	ns := []specs.LinuxNamespace{
		{Type: specs.PIDNamespace},
		{Type: specs.MountNamespace},
	}
	for _, j := range []struct {
		kind specs.LinuxNamespaceType
		path string
	}{{specs.UserNamespace, o.UserNS}, {specs.NetworkNamespace, o.NetNS}, {specs.IPCNamespace, o.IPCNS}, {specs.UTSNamespace, o.UTSNS}} {
		if j.path != "" {
			ns = append(ns, specs.LinuxNamespace{Type: j.kind, Path: j.path})
		}
	}
	user := specs.User{UID: DefaultID, GID: DefaultID}
	if o.UserNS != "" {
		user = specs.User{UID: o.PauseID, GID: o.PauseID}
	}
	if o.User != nil {
		user = *o.User
	}
	return &specs.Spec{
		Version: ociVersion,
		Process: &specs.Process{
			User:            user,
			Args:            append([]string(nil), o.Args...),
			Cwd:             "/",
			Capabilities:    &specs.LinuxCapabilities{},
			NoNewPrivileges: true,
			OOMScoreAdj:     &adj,
		},
		Root: &specs.Root{Path: o.Rootfs, Readonly: true},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "noexec", "mode=755", "size=64k"}},
		},
		Linux: &specs.Linux{
			Namespaces:    ns,
			CgroupsPath:   o.CgroupsPath,
			Resources:     &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}},
			MaskedPaths:   maskedPaths,
			ReadonlyPaths: readonlyPaths,
			Seccomp:       o.Seccomp,
		},
	}
}
