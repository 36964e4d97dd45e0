package nri

import (
	"fmt"
	"slices"

	"github.com/containerd/nri/pkg/runtime-tools/generate"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	nriapi "github.com/containerd/nri/pkg/api"
)

// AdjustSpec applies the plugins' merged adjustment to a container's OCI spec, in place:
// annotations, environment, arguments, hooks, devices, cgroups path, OOM score, I/O
// priority, scheduler, seccomp, namespaces, sysctls, net devices, memory policy,
// resources, mounts and rlimits. The semantics (what a "-" removal marker means, how
// mounts are ordered) are NRI's own (its generate package); specEditor gives it the
// spec to work on.
func AdjustSpec(spec *specs.Spec, adjust *nriapi.ContainerAdjustment) error {
	if adjust == nil {
		return nil
	}
	if spec.Process == nil {
		spec.Process = &specs.Process{}
	}
	if spec.Linux == nil {
		spec.Linux = &specs.Linux{}
	}
	gen := generate.SpecGenerator(&specEditor{s: spec})
	if err := gen.Adjust(adjust); err != nil {
		return fmt.Errorf("NRI adjustment: %w", err)
	}
	return nil
}

// specEditor is the small set of OCI spec edits NRI's generator is written against
// (generate.UnderlyingGenerator), done directly on a spec.
type specEditor struct{ s *specs.Spec }

var _ generate.UnderlyingGenerator = (*specEditor)(nil)

func (e *specEditor) Spec() *specs.Spec { return e.s }

func (e *specEditor) process() *specs.Process {
	if e.s.Process == nil {
		e.s.Process = &specs.Process{}
	}
	return e.s.Process
}

func (e *specEditor) linux() *specs.Linux {
	if e.s.Linux == nil {
		e.s.Linux = &specs.Linux{}
	}
	return e.s.Linux
}

func (e *specEditor) resources() *specs.LinuxResources {
	l := e.linux()
	if l.Resources == nil {
		l.Resources = &specs.LinuxResources{}
	}
	return l.Resources
}

func (e *specEditor) cpu() *specs.LinuxCPU {
	r := e.resources()
	if r.CPU == nil {
		r.CPU = &specs.LinuxCPU{}
	}
	return r.CPU
}

func (e *specEditor) memory() *specs.LinuxMemory {
	r := e.resources()
	if r.Memory == nil {
		r.Memory = &specs.LinuxMemory{}
	}
	return r.Memory
}

func (e *specEditor) hooks() *specs.Hooks {
	if e.s.Hooks == nil {
		e.s.Hooks = &specs.Hooks{}
	}
	return e.s.Hooks
}

func (e *specEditor) AddAnnotation(key, value string) {
	if e.s.Annotations == nil {
		e.s.Annotations = map[string]string{}
	}
	e.s.Annotations[key] = value
}

func (e *specEditor) RemoveAnnotation(key string) { delete(e.s.Annotations, key) }

// AddProcessEnv sets name to value, replacing an earlier value of name.
func (e *specEditor) AddProcessEnv(name, value string) {
	p := e.process()
	entry := name + "=" + value
	for i, kv := range p.Env {
		if len(kv) > len(name) && kv[:len(name)+1] == name+"=" {
			p.Env[i] = entry
			return
		}
	}
	p.Env = append(p.Env, entry)
}

func (e *specEditor) ClearProcessEnv() { e.process().Env = nil }

func (e *specEditor) SetProcessArgs(args []string) { e.process().Args = slices.Clone(args) }

func (e *specEditor) SetProcessOOMScoreAdj(adj int) { e.process().OOMScoreAdj = &adj }

// AddPreStartHook keeps the prestart hooks plugins still send.
func (e *specEditor) AddPreStartHook(h specs.Hook) {
	hooks := e.hooks()
	//lint:ignore SA1019 NRI still relays prestart hooks, and runc still runs them
	hooks.Prestart = append(hooks.Prestart, h)
}

func (e *specEditor) AddPostStartHook(h specs.Hook) {
	e.hooks().Poststart = append(e.hooks().Poststart, h)
}

func (e *specEditor) AddPostStopHook(h specs.Hook) {
	e.hooks().Poststop = append(e.hooks().Poststop, h)
}

// AddDevice adds a device node, replacing one at the same path.
func (e *specEditor) AddDevice(d specs.LinuxDevice) {
	l := e.linux()
	for i := range l.Devices {
		if l.Devices[i].Path == d.Path {
			l.Devices[i] = d
			return
		}
	}
	l.Devices = append(l.Devices, d)
}

func (e *specEditor) RemoveDevice(path string) {
	l := e.linux()
	l.Devices = slices.DeleteFunc(l.Devices, func(d specs.LinuxDevice) bool { return d.Path == path })
}

func (e *specEditor) AddLinuxResourcesDevice(allow bool, devType string, major, minor *int64, access string) {
	r := e.resources()
	r.Devices = append(r.Devices, specs.LinuxDeviceCgroup{
		Allow: allow, Type: devType, Major: major, Minor: minor, Access: access,
	})
}

// namespaceTypes maps the names NRI uses for namespaces to the spec's; both the
// spec's own and the short forms are accepted.
var namespaceTypes = map[string]specs.LinuxNamespaceType{
	"pid": specs.PIDNamespace, "network": specs.NetworkNamespace, "net": specs.NetworkNamespace,
	"mount": specs.MountNamespace, "mnt": specs.MountNamespace, "ipc": specs.IPCNamespace,
	"uts": specs.UTSNamespace, "user": specs.UserNamespace, "cgroup": specs.CgroupNamespace,
	"time": specs.TimeNamespace,
}

func namespaceType(ns string) (specs.LinuxNamespaceType, error) {
	t, ok := namespaceTypes[ns]
	if !ok {
		return "", fmt.Errorf("unknown namespace type %q", ns)
	}
	return t, nil
}

// AddOrReplaceLinuxNamespace sets the namespace of type ns (path "" = a new one).
func (e *specEditor) AddOrReplaceLinuxNamespace(ns, path string) error {
	t, err := namespaceType(ns)
	if err != nil {
		return err
	}
	l := e.linux()
	for i := range l.Namespaces {
		if l.Namespaces[i].Type == t {
			l.Namespaces[i].Path = path
			return nil
		}
	}
	l.Namespaces = append(l.Namespaces, specs.LinuxNamespace{Type: t, Path: path})
	return nil
}

func (e *specEditor) RemoveLinuxNamespace(ns string) error {
	t, err := namespaceType(ns)
	if err != nil {
		return err
	}
	l := e.linux()
	l.Namespaces = slices.DeleteFunc(l.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == t })
	return nil
}

func (e *specEditor) AddLinuxSysctl(key, value string) {
	l := e.linux()
	if l.Sysctl == nil {
		l.Sysctl = map[string]string{}
	}
	l.Sysctl[key] = value
}

func (e *specEditor) RemoveLinuxSysctl(key string) { delete(e.linux().Sysctl, key) }

func (e *specEditor) AddMount(m specs.Mount) { e.s.Mounts = append(e.s.Mounts, m) }

func (e *specEditor) ClearMounts() { e.s.Mounts = nil }

func (e *specEditor) Mounts() []specs.Mount { return e.s.Mounts }

func (e *specEditor) RemoveMount(dest string) {
	e.s.Mounts = slices.DeleteFunc(e.s.Mounts, func(m specs.Mount) bool { return m.Destination == dest })
}

// SetLinuxRootPropagation sets the rootfs propagation; NRI raises it for mounts that
// need shared or slave propagation.
func (e *specEditor) SetLinuxRootPropagation(rp string) error {
	switch rp {
	case "", "private", "rprivate", "slave", "rslave", "shared", "rshared", "unbindable", "runbindable":
	default:
		return fmt.Errorf("rootfs propagation %q is invalid", rp)
	}
	e.linux().RootfsPropagation = rp
	return nil
}

func (e *specEditor) SetLinuxCgroupsPath(path string) { e.linux().CgroupsPath = path }

func (e *specEditor) SetLinuxResourcesCPUCpus(cpus string)        { e.cpu().Cpus = cpus }
func (e *specEditor) SetLinuxResourcesCPUMems(mems string)        { e.cpu().Mems = mems }
func (e *specEditor) SetLinuxResourcesCPUPeriod(period uint64)    { e.cpu().Period = &period }
func (e *specEditor) SetLinuxResourcesCPUQuota(quota int64)       { e.cpu().Quota = &quota }
func (e *specEditor) SetLinuxResourcesCPUShares(shares uint64)    { e.cpu().Shares = &shares }
func (e *specEditor) SetLinuxResourcesMemoryLimit(limit int64)    { e.memory().Limit = &limit }
func (e *specEditor) SetLinuxResourcesMemorySwap(swap int64)      { e.memory().Swap = &swap }
func (e *specEditor) SetLinuxResourcesCPURealtimeRuntime(t int64) { e.cpu().RealtimeRuntime = &t }

func (e *specEditor) SetLinuxResourcesCPURealtimePeriod(period uint64) {
	e.cpu().RealtimePeriod = &period
}

// AddLinuxResourcesHugepageLimit sets the limit of one page size, replacing an earlier one.
func (e *specEditor) AddLinuxResourcesHugepageLimit(pageSize string, limit uint64) {
	r := e.resources()
	for i := range r.HugepageLimits {
		if r.HugepageLimits[i].Pagesize == pageSize {
			r.HugepageLimits[i].Limit = limit
			return
		}
	}
	r.HugepageLimits = append(r.HugepageLimits, specs.LinuxHugepageLimit{Pagesize: pageSize, Limit: limit})
}

func (e *specEditor) AddLinuxResourcesUnified(key, val string) {
	r := e.resources()
	if r.Unified == nil {
		r.Unified = map[string]string{}
	}
	r.Unified[key] = val
}
