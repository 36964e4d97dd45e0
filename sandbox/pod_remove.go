package sandbox

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/nspin"
	"github.com/berth-runtime/berth/sandbox/podfiles"
)

// RemovePod removes a pod (RemovePodSandbox): it is stopped first if it is not, then
// its cgroup (if berth made it), its directory and its record go, and its name is free
// again. Removing an absent pod is a no-op.
func (s *Service) RemovePod(ctx context.Context, id string) error {
	return s.idempotent(id, func(p *pod) error {
		p.life.Lock()
		defer p.life.Unlock()
		if err := s.eachPodContainer(p, func(c *container) error { return s.removeContainer(ctx, c) }); err != nil {
			return fmt.Errorf("remove pod sandbox %s: %w", p.meta.ID, err)
		}
		var last *runtimeapi.PodSandboxStatus
		if s.events.active() {
			last, _, _ = s.PodStatus(p.meta.ID, false)
		}
		cur := p.status()
		np := s.nriPod(p, &cur.Status)
		if cur.State == StateReady {
			s.cfg.NRI.StopPodSandbox(ctx, np)
		}
		if err := s.remove(ctx, p); err != nil {
			return err
		}
		s.cfg.NRI.RemovePodSandbox(ctx, np)
		s.emitPodEvent(p.meta.ID, runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT, last)
		return nil
	})
}

// remove stops the pod if needed and deletes everything left of it. p.op must be held.
func (s *Service) remove(ctx context.Context, p *pod) error {
	start := time.Now()
	if err := s.stop(ctx, p); err != nil {
		return err
	}
	if cg := p.status().Cgroup; cg != nil {
		pc, err := s.cfg.Cgroups.Open(*cg)
		if err == nil {
			err = pc.Remove()
		}
		if err != nil {
			return fmt.Errorf("remove pod sandbox %s: %w", p.meta.ID, err)
		}
	}
	if err := removePodDir(s.podDir(p.meta.ID)); err != nil {
		return fmt.Errorf("remove pod sandbox %s: %w", p.meta.ID, err)
	}
	if err := s.store.Delete(p.meta.ID); err != nil {
		return fmt.Errorf("remove pod sandbox %s: %w", p.meta.ID, err)
	}
	p.removed = true
	s.drop(p.meta.ID)
	s.names.Release(p.key, p.meta.ID)
	s.log.Debug("pod sandbox removed", "id", p.meta.ID, "pod", p.key, "took", time.Since(start).Round(time.Microsecond))
	return nil
}

// removePodDir removes a pod's directory. Whatever may still be mounted in it at the
// places berth mounts things (a record that lost track of a mount after a crash) is
// unmounted first, so that the removal never reaches into a mount.
func removePodDir(dir string) error {
	pinned := nspin.Pinned{Dir: filepath.Join(dir, nsDir)}
	for _, k := range nspin.Kinds {
		if err := nspin.Unpin(filepath.Join(pinned.Dir, string(k))); err != nil {
			return err
		}
	}
	if err := podfiles.UnmountShm(filepath.Join(dir, podfiles.ShmDir)); err != nil {
		return err
	}
	return os.RemoveAll(dir)
}
