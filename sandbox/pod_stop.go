package sandbox

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/nspin"
	"github.com/berth-runtime/berth/sandbox/podfiles"
)

// StopPod stops a pod (StopPodSandbox): its pause is killed, it leaves its network (its
// addresses are released), its namespaces and shm are released. Its record, files and
// cgroup stay until RemovePod. Stopping a stopped or unknown pod is a no-op.
func (s *Service) StopPod(ctx context.Context, id string) error {
	return s.idempotent(id, func(p *pod) error {
		p.life.Lock()
		defer p.life.Unlock()
		if err := s.stopPodContainers(ctx, p); err != nil {
			return err
		}
		cur := p.status()
		wasReady := cur.State == StateReady
		if wasReady {
			// Once, when the pod goes from READY: its containers are stopped and
			// its namespaces still there for the plugins to look at.
			s.cfg.NRI.StopPodSandbox(ctx, s.nriPod(p, &cur.Status))
		}
		if err := s.stop(ctx, p); err != nil {
			return err
		}
		if wasReady {
			s.emitPodEvent(p.meta.ID, runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT, nil)
		}
		return nil
	})
}

// stopPodContainers kills the pod's containers (StopPodSandbox gives them no grace: kubelet
// stopped them with theirs before), in parallel.
func (s *Service) stopPodContainers(ctx context.Context, p *pod) error {
	return s.eachPodContainer(p, func(c *container) error { return s.stopContainer(ctx, c, 0) })
}

// eachPodContainer runs op on each container of p, in parallel, with the container's
// operation lock held.
func (s *Service) eachPodContainer(p *pod, op func(*container) error) error {
	ctrs := s.podContainers(p.meta.ID)
	errs := make([]error, len(ctrs))
	var wg sync.WaitGroup
	for i, c := range ctrs {
		wg.Go(func() {
			c.op.Lock()
			defer c.op.Unlock()
			if !c.removed {
				errs[i] = op(c)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// idempotent runs op on the pod with its operation lock held. An absent (or just
// removed) pod is not an error: Stop and Remove are idempotent.
func (s *Service) idempotent(id string, op func(*pod) error) error {
	p, err := s.get(id)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	p.op.Lock()
	defer p.op.Unlock()
	if p.removed {
		return nil
	}
	return op(p)
}

// stop releases what the pod holds and records it NOTREADY. p.op must be held. What
// could not be released stays in the status, and the error says why; a later call
// retries.
func (s *Service) stop(ctx context.Context, p *pod) error {
	cur := p.status()
	if cur.State == StateNotReady && cur.released() {
		return nil
	}
	start := time.Now()
	st := cur.Status
	var netErr, infraErr error
	var wg sync.WaitGroup
	if st.Network {
		wg.Go(func() {
			// Before the namespace goes: the bridge plugin needs it to find its rules.
			if netErr = s.cfg.Network.Teardown(ctx, s.netPod(p, st.Namespaces.Net)); netErr == nil {
				st.Network = false
			}
		})
	}
	if st.Infra != nil || st.InfraContainer {
		wg.Go(func() {
			if infraErr = s.stopInfra(ctx, p); infraErr == nil {
				st.Infra, st.InfraContainer = nil, false
			}
		})
	}
	wg.Wait()
	errs := []error{netErr, infraErr}
	if !st.Network {
		errs = append(errs, st.releaseNamespaces())
	}
	if st.Shm != "" {
		err := podfiles.UnmountShm(st.Shm)
		if err == nil {
			st.Shm = ""
		}
		errs = append(errs, err)
	}
	st.State = StateNotReady
	if st.StoppedAt == 0 {
		st.StoppedAt = time.Now().UnixNano()
	}
	err := errors.Join(errs...)
	st.Reason = ""
	if err != nil {
		st.Reason = fmt.Sprintf("stop incomplete: %v", err)
	}
	if rerr := s.record(p, st); rerr != nil {
		err = errors.Join(err, rerr)
	}
	if err != nil {
		return fmt.Errorf("stop pod sandbox %s: %w", p.meta.ID, err)
	}
	s.log.Debug("pod sandbox stopped", "id", p.meta.ID, "pod", p.key, "took", time.Since(start).Round(time.Microsecond))
	return nil
}

// releaseNamespaces unpins the pod's namespaces and clears them from st.
func (st *Status) releaseNamespaces() error {
	ns := st.Namespaces
	if ns.Net == "" && ns.IPC == "" && ns.UTS == "" && ns.User == "" {
		return nil
	}
	if err := ns.Remove(); err != nil {
		return err
	}
	st.Namespaces = nspin.Pinned{Dir: ns.Dir}
	return nil
}
