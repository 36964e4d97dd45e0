package sandbox

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"

	nriapi "github.com/containerd/nri/pkg/api"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// NRI is the Node Resource Interface as pods and containers see it: the plugins' hooks
// at every lifecycle event (sandbox/nri.Adapter implements it; berthd wires it). The
// hooks before a change return an error that fails the change; the others report what
// happened. Each call is bounded by the adapter's request timeout per plugin.
type NRI interface {
	RunPodSandbox(ctx context.Context, pod *nriapi.PodSandbox) error
	StopPodSandbox(ctx context.Context, pod *nriapi.PodSandbox)
	RemovePodSandbox(ctx context.Context, pod *nriapi.PodSandbox)
	// UpdatePodSandbox precedes a change of the pod's resources (overhead and total).
	UpdatePodSandbox(ctx context.Context, pod *nriapi.PodSandbox, overhead, res *specs.LinuxResources) error
	PostUpdatePodSandbox(ctx context.Context, pod *nriapi.PodSandbox)
	// CreateContainer lets the plugins adjust spec, the container's OCI spec, in place.
	CreateContainer(ctx context.Context, pod *nriapi.PodSandbox, ctr *nriapi.Container, spec *specs.Spec) error
	PostCreateContainer(ctx context.Context, pod *nriapi.PodSandbox, ctr *nriapi.Container)
	StartContainer(ctx context.Context, pod *nriapi.PodSandbox, ctr *nriapi.Container) error
	PostStartContainer(ctx context.Context, pod *nriapi.PodSandbox, ctr *nriapi.Container)
	// UpdateContainer returns the resources to apply: res as the plugins changed it.
	UpdateContainer(ctx context.Context, pod *nriapi.PodSandbox, ctr *nriapi.Container, res *specs.LinuxResources) (*specs.LinuxResources, error)
	PostUpdateContainer(ctx context.Context, pod *nriapi.PodSandbox, ctr *nriapi.Container)
	StopContainer(ctx context.Context, pod *nriapi.PodSandbox, ctr *nriapi.Container)
	RemoveContainer(ctx context.Context, pod *nriapi.PodSandbox, ctr *nriapi.Container)
	// BlockSync holds back the synchronization of a plugin that connects until unblock:
	// a container being created is then either in the new plugin's snapshot or created
	// with its hooks.
	BlockSync() (unblock func())
}

// noNRI is the NRI of a berthd that serves none: every hook is a no-op.
type noNRI struct{}

func (noNRI) RunPodSandbox(context.Context, *nriapi.PodSandbox) error { return nil }
func (noNRI) StopPodSandbox(context.Context, *nriapi.PodSandbox)      {}
func (noNRI) RemovePodSandbox(context.Context, *nriapi.PodSandbox)    {}
func (noNRI) UpdatePodSandbox(context.Context, *nriapi.PodSandbox, *specs.LinuxResources, *specs.LinuxResources) error {
	return nil
}
func (noNRI) PostUpdatePodSandbox(context.Context, *nriapi.PodSandbox) {}
func (noNRI) CreateContainer(context.Context, *nriapi.PodSandbox, *nriapi.Container, *specs.Spec) error {
	return nil
}
func (noNRI) PostCreateContainer(context.Context, *nriapi.PodSandbox, *nriapi.Container) {}
func (noNRI) StartContainer(context.Context, *nriapi.PodSandbox, *nriapi.Container) error {
	return nil
}
func (noNRI) PostStartContainer(context.Context, *nriapi.PodSandbox, *nriapi.Container) {}
func (noNRI) UpdateContainer(_ context.Context, _ *nriapi.PodSandbox, _ *nriapi.Container, res *specs.LinuxResources) (*specs.LinuxResources, error) {
	return res, nil
}
func (noNRI) PostUpdateContainer(context.Context, *nriapi.PodSandbox, *nriapi.Container) {}
func (noNRI) StopContainer(context.Context, *nriapi.PodSandbox, *nriapi.Container)       {}
func (noNRI) RemoveContainer(context.Context, *nriapi.PodSandbox, *nriapi.Container)     {}
func (noNRI) BlockSync() func()                                                          { return func() {} }

// NRISnapshot returns every ready pod and every container of one, as a plugin that
// connects is synchronized with them (sandbox/nri.Runtime).
func (s *Service) NRISnapshot() ([]*nriapi.PodSandbox, []*nriapi.Container) {
	s.mu.RLock()
	pods := make([]*pod, 0, len(s.pods))
	for _, p := range s.pods {
		pods = append(pods, p)
	}
	ctrs := make([]*container, 0, len(s.ctrs))
	for _, c := range s.ctrs {
		ctrs = append(ctrs, c)
	}
	s.mu.RUnlock()
	var outPods []*nriapi.PodSandbox
	for _, p := range pods {
		if st := p.status(); st != nil && st.State == StateReady {
			outPods = append(outPods, s.nriPod(p, &st.Status))
		}
	}
	var outCtrs []*nriapi.Container
	for _, c := range ctrs {
		outCtrs = append(outCtrs, s.nriContainer(c))
	}
	return outPods, outCtrs
}

// nriPod is the pod as NRI plugins see it; st is its status (the one being built
// during a create).
func (s *Service) nriPod(p *pod, st *Status) *nriapi.PodSandbox {
	out := &nriapi.PodSandbox{
		Id: p.meta.ID, Name: p.meta.Name, Uid: p.meta.UID, Namespace: p.meta.Namespace,
		Labels: p.config.GetLabels(), Annotations: p.config.GetAnnotations(), RuntimeHandler: p.meta.Handler,
		Linux: &nriapi.LinuxPodSandbox{CgroupParent: p.opts.cgroupParent},
	}
	if p.opts.resources != nil {
		out.Linux.PodResources = nriapi.FromOCILinuxResources(p.opts.resources.ToOCI(), nil)
	}
	if st == nil {
		return out
	}
	out.Ips = st.IPs
	if st.Infra != nil {
		out.Pid = uint32(st.Infra.PID)
	}
	if st.Cgroup != nil {
		out.Linux.CgroupsPath = st.Cgroup.Parent
	}
	for _, ns := range []struct{ kind, path string }{
		{"network", st.Namespaces.Net}, {"ipc", st.Namespaces.IPC}, {"uts", st.Namespaces.UTS},
	} {
		if ns.path != "" {
			out.Linux.Namespaces = append(out.Linux.Namespaces, &nriapi.LinuxNamespace{Type: ns.kind, Path: ns.path})
		}
	}
	return out
}

// nriPodOf is the pod of a container, or a pod that only names it when it is gone.
func (s *Service) nriPodOf(c *container) *nriapi.PodSandbox {
	p, err := s.get(c.meta.PodID)
	if err != nil {
		return &nriapi.PodSandbox{Id: c.meta.PodID}
	}
	var st *Status
	if cur := p.status(); cur != nil {
		st = &cur.Status
	}
	return s.nriPod(p, st)
}

// nriContainer is the container as NRI plugins see it: what its spec says (read once
// from its bundle) and its current state.
func (s *Service) nriContainer(c *container) *nriapi.Container {
	base := c.nriSpec.Load()
	if base == nil {
		base = nriFromSpec(readBundleSpec(s.bundleOf(c.meta.ID)))
		c.nriSpec.Store(base)
	}
	out := &nriapi.Container{
		Id: c.meta.ID, PodSandboxId: c.meta.PodID, Name: c.meta.Name,
		Labels: c.config.GetLabels(), Annotations: c.config.GetAnnotations(),
		Args: base.Args, Env: base.Env, Mounts: base.Mounts, Hooks: base.Hooks, Linux: base.Linux,
		Rlimits: base.Rlimits, CreatedAt: c.meta.CreatedAt, State: nriapi.ContainerState_CONTAINER_UNKNOWN,
	}
	st := c.status()
	if st == nil {
		return out
	}
	switch st.State {
	case ContainerCreated:
		out.State = nriapi.ContainerState_CONTAINER_CREATED
	case ContainerRunning:
		out.State = nriapi.ContainerState_CONTAINER_RUNNING
	case ContainerExited:
		out.State = nriapi.ContainerState_CONTAINER_STOPPED
	}
	out.Pid = uint32(max(st.Pid, 0))
	out.StartedAt, out.FinishedAt = st.StartedAt, st.FinishedAt
	out.ExitCode, out.StatusReason, out.StatusMessage = st.ExitCode, st.Reason, st.Message
	return out
}

// readBundleSpec reads a container's OCI spec; nil when it cannot.
func readBundleSpec(bundle string) *specs.Spec {
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil
	}
	var sp specs.Spec
	if json.Unmarshal(data, &sp) != nil {
		return nil
	}
	return &sp
}

// nriFromSpec is what NRI plugins see of a container's OCI spec.
func nriFromSpec(sp *specs.Spec) *nriapi.Container {
	out := &nriapi.Container{}
	if sp == nil {
		return out
	}
	out.Mounts = nriapi.FromOCIMounts(sp.Mounts)
	out.Hooks = nriapi.FromOCIHooks(sp.Hooks)
	if p := sp.Process; p != nil {
		out.Args, out.Env = p.Args, p.Env
		for _, l := range p.Rlimits {
			out.Rlimits = append(out.Rlimits, &nriapi.POSIXRlimit{Type: l.Type, Hard: l.Hard, Soft: l.Soft})
		}
	}
	if l := sp.Linux; l != nil {
		out.Linux = &nriapi.LinuxContainer{
			Namespaces:  nriapi.FromOCILinuxNamespaces(l.Namespaces),
			Devices:     nriapi.FromOCILinuxDevices(l.Devices),
			Resources:   nriapi.FromOCILinuxResources(l.Resources, nil),
			CgroupsPath: l.CgroupsPath,
			Sysctl:      l.Sysctl,
		}
		if l.Seccomp != nil { // NRI's conversion takes no nil
			out.Linux.SeccompPolicy = nriapi.FromOCILinuxSeccomp(l.Seccomp)
		}
		if sp.Process != nil && sp.Process.OOMScoreAdj != nil {
			out.Linux.OomScoreAdj = nriapi.Int(*sp.Process.OOMScoreAdj)
		}
	}
	return out
}

// criResources is what ContainerStatus reports of resources NRI plugins may have
// changed: req, with the values res (what was applied) holds in their place.
func criResources(req *runtimeapi.LinuxContainerResources, res *specs.LinuxResources) *runtimeapi.LinuxContainerResources {
	out := proto.Clone(req).(*runtimeapi.LinuxContainerResources)
	if res == nil {
		return out
	}
	if c := res.CPU; c != nil {
		if c.Period != nil {
			out.CpuPeriod = int64(*c.Period)
		}
		if c.Quota != nil {
			out.CpuQuota = *c.Quota
		}
		if c.Shares != nil {
			out.CpuShares = int64(*c.Shares)
		}
		out.CpusetCpus, out.CpusetMems = c.Cpus, c.Mems
	}
	if m := res.Memory; m != nil {
		if m.Limit != nil {
			out.MemoryLimitInBytes = *m.Limit
		}
		if m.Swap != nil {
			out.MemorySwapLimitInBytes = *m.Swap
		}
	}
	if len(res.HugepageLimits) > 0 {
		out.HugepageLimits = nil
		for _, h := range res.HugepageLimits {
			out.HugepageLimits = append(out.HugepageLimits, &runtimeapi.HugepageLimit{PageSize: h.Pagesize, Limit: h.Limit})
		}
	}
	if len(res.Unified) > 0 {
		out.Unified = res.Unified
	}
	return out
}
