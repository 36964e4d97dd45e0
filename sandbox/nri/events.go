package nri

import (
	"context"

	nriapi "github.com/containerd/nri/pkg/api"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The hooks sandbox.NRI asks for. Those before a change (RunPodSandbox, CreateContainer,
// StartContainer, UpdateContainer) fail the change when a plugin fails them; the others
// report what happened and only log a failure.

func (a *Adapter) RunPodSandbox(ctx context.Context, pod *nriapi.PodSandbox) error {
	return a.nri.RunPodSandbox(ctx, &nriapi.RunPodSandboxRequest{Pod: pod})
}

func (a *Adapter) StopPodSandbox(ctx context.Context, pod *nriapi.PodSandbox) {
	a.logged("StopPodSandbox", pod.GetId(), a.nri.StopPodSandbox(ctx, &nriapi.StopPodSandboxRequest{Pod: pod}))
}

func (a *Adapter) RemovePodSandbox(ctx context.Context, pod *nriapi.PodSandbox) {
	a.logged("RemovePodSandbox", pod.GetId(), a.nri.RemovePodSandbox(ctx, &nriapi.RemovePodSandboxRequest{Pod: pod}))
}

// UpdatePodSandbox precedes a change of the pod's resources.
func (a *Adapter) UpdatePodSandbox(ctx context.Context, pod *nriapi.PodSandbox, overhead, res *specs.LinuxResources) error {
	_, err := a.nri.UpdatePodSandbox(ctx, &nriapi.UpdatePodSandboxRequest{
		Pod:                    pod,
		OverheadLinuxResources: nriapi.FromOCILinuxResources(overhead, nil),
		LinuxResources:         nriapi.FromOCILinuxResources(res, nil),
	})
	return err
}

func (a *Adapter) PostUpdatePodSandbox(ctx context.Context, pod *nriapi.PodSandbox) {
	a.logged("PostUpdatePodSandbox", pod.GetId(), a.nri.PostUpdatePodSandbox(ctx, &nriapi.PostUpdatePodSandboxRequest{Pod: pod}))
}

// CreateContainer lets the plugins adjust spec, the container's OCI spec, in place; the
// updates of other containers they ask for are applied on their own.
func (a *Adapter) CreateContainer(ctx context.Context, pod *nriapi.PodSandbox, ctr *nriapi.Container, spec *specs.Spec) error {
	rpl, err := a.nri.CreateContainer(ctx, &nriapi.CreateContainerRequest{Pod: pod, Container: ctr})
	if err != nil {
		return err
	}
	if err := AdjustSpec(spec, rpl.GetAdjust()); err != nil {
		return err
	}
	a.applyUpdatesAsync(rpl.GetUpdate())
	return nil
}

func (a *Adapter) PostCreateContainer(ctx context.Context, pod *nriapi.PodSandbox, ctr *nriapi.Container) {
	a.logged("PostCreateContainer", ctr.GetId(),
		a.nri.PostCreateContainer(ctx, &nriapi.PostCreateContainerRequest{Pod: pod, Container: ctr}))
}

func (a *Adapter) StartContainer(ctx context.Context, pod *nriapi.PodSandbox, ctr *nriapi.Container) error {
	return a.nri.StartContainer(ctx, &nriapi.StartContainerRequest{Pod: pod, Container: ctr})
}

func (a *Adapter) PostStartContainer(ctx context.Context, pod *nriapi.PodSandbox, ctr *nriapi.Container) {
	a.logged("PostStartContainer", ctr.GetId(),
		a.nri.PostStartContainer(ctx, &nriapi.PostStartContainerRequest{Pod: pod, Container: ctr}))
}

// UpdateContainer returns the resources to apply to ctr: res as the plugins changed it.
func (a *Adapter) UpdateContainer(ctx context.Context, pod *nriapi.PodSandbox, ctr *nriapi.Container, res *specs.LinuxResources) (*specs.LinuxResources, error) {
	rpl, err := a.nri.UpdateContainer(ctx, &nriapi.UpdateContainerRequest{
		Pod: pod, Container: ctr, LinuxResources: nriapi.FromOCILinuxResources(res, nil),
	})
	if err != nil {
		return nil, err
	}
	var others []*nriapi.ContainerUpdate
	for _, u := range rpl.GetUpdate() {
		switch {
		case u == nil:
		case u.GetContainerId() == ctr.GetId():
			if r := u.GetLinux().GetResources(); r != nil {
				res = r.ToOCI()
			}
		default:
			others = append(others, u)
		}
	}
	a.applyUpdatesAsync(others)
	return res, nil
}

func (a *Adapter) PostUpdateContainer(ctx context.Context, pod *nriapi.PodSandbox, ctr *nriapi.Container) {
	a.logged("PostUpdateContainer", ctr.GetId(),
		a.nri.PostUpdateContainer(ctx, &nriapi.PostUpdateContainerRequest{Pod: pod, Container: ctr}))
}

func (a *Adapter) StopContainer(ctx context.Context, pod *nriapi.PodSandbox, ctr *nriapi.Container) {
	rpl, err := a.nri.StopContainer(ctx, &nriapi.StopContainerRequest{Pod: pod, Container: ctr})
	a.logged("StopContainer", ctr.GetId(), err)
	a.applyUpdatesAsync(rpl.GetUpdate())
}

func (a *Adapter) RemoveContainer(ctx context.Context, pod *nriapi.PodSandbox, ctr *nriapi.Container) {
	a.logged("RemoveContainer", ctr.GetId(),
		a.nri.RemoveContainer(ctx, &nriapi.RemoveContainerRequest{Pod: pod, Container: ctr}))
}

func (a *Adapter) logged(event, id string, err error) {
	if err != nil {
		a.log.Warn("NRI plugin failed "+event, "id", id, "error", err)
	}
}
