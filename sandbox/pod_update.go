package sandbox

import (
	"context"
	"errors"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/encoding/protojson"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/sandbox/cgroups"
)

// UpdatePodResources records a pod's new pod-level resources
// (UpdatePodSandboxResources) and applies them to the pod cgroup when the pod has one
// that berth manages. Kubelet resizes the pod cgroup itself before the call, so under
// the systemd driver, where the pod slice is kubelet's alone, the resources are only
// recorded.
func (s *Service) UpdatePodResources(ctx context.Context, id string, overhead, resources *runtimeapi.LinuxContainerResources) error {
	p, err := s.get(id)
	if err != nil {
		return err
	}
	res, err := cgroups.PodResources(overhead, resources)
	if err != nil {
		return err
	}
	raw, err := protojson.Marshal(&runtimeapi.LinuxPodSandboxConfig{Overhead: overhead, Resources: resources})
	if err != nil {
		return fmt.Errorf("encode pod resources: %w", err)
	}
	p.op.Lock()
	defer p.op.Unlock()
	if p.removed {
		return errdefs.NotFound(fmt.Sprintf("pod sandbox %q not found", id))
	}
	st := p.status().Status
	if st.State == StateReady {
		np := s.nriPod(p, &st)
		if err := s.cfg.NRI.UpdatePodSandbox(ctx, np, ociResources(overhead), ociResources(resources)); err != nil {
			return fmt.Errorf("update pod sandbox %s: NRI: %w", p.meta.ID, err)
		}
		defer s.cfg.NRI.PostUpdatePodSandbox(ctx, np)
	}
	if st.Cgroup != nil && st.State == StateReady {
		pc, err := s.cfg.Cgroups.Open(*st.Cgroup)
		if err == nil {
			err = pc.Update(res)
		}
		if err != nil && !errors.Is(err, errdefs.ErrUnimplemented) {
			return fmt.Errorf("update pod sandbox %s: %w", p.meta.ID, err)
		}
	}
	st.Resources = raw
	return s.record(p, st)
}

// ociResources is r in OCI terms, for NRI plugins; nil when r is nil or invalid.
func ociResources(r *runtimeapi.LinuxContainerResources) *specs.LinuxResources {
	res, err := cgroups.FromCRI(r)
	if r == nil || err != nil || res == nil {
		return nil
	}
	return res.ToOCI()
}
