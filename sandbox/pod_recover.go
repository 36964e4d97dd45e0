package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/nspin"
	"github.com/berth-runtime/berth/network"
	"github.com/berth-runtime/berth/sandbox/infra"
	"github.com/berth-runtime/berth/sandbox/podfiles"
	"github.com/berth-runtime/berth/sandbox/store"
)

// recoverParallel bounds the records reconciled at once (each may exec the runtime).
const recoverParallel = 8

// recover rebuilds the index from the records and reconciles it with the node. It is
// the contract of a berthd restart:
//
//   - Nothing that runs is stopped, and a pod's record is not rewritten: what recovery
//     learns about the node is kept in memory and learnt again at the next start.
//   - A READY pod stays READY only while its pinned network namespace exists and its
//     pause (the recorded pid with the recorded start time) runs; otherwise it is
//     NOTREADY, for kubelet to stop and remove.
//   - A record without status, or with status "creating", is a create that berthd's end
//     cut short: it is undone like
//     a failed create (everything found at the places berth puts things, CNI DEL by id,
//     runtime delete by id, the pod cgroup if the record says berth made it), and the
//     record goes. If that undo fails, the pod is kept, NOTREADY.
//   - A record whose status cannot be read is listed NOTREADY (state unknown); Stop and
//     Remove release whatever they find at the places berth puts things.
//   - A record whose metadata cannot be read is skipped and logged; nothing is deleted.
//   - CNI attachments cached for a pod that has no record are torn down.
func (s *Service) recover(ctx context.Context) {
	recs, errs := s.store.Load()
	for _, err := range errs {
		s.log.Warn("skipping an unreadable pod record", "error", err)
	}
	sem := make(chan struct{}, recoverParallel)
	var wg sync.WaitGroup
	for _, rec := range recs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			s.recoverOne(ctx, rec)
		})
	}
	wg.Wait()
	s.tearDownOrphans(ctx)
	if len(recs) > 0 {
		s.log.Info("pod sandboxes recovered", "pods", len(s.pods), "records", len(recs), "unreadable", len(errs))
	}
}

func (s *Service) recoverOne(ctx context.Context, rec store.Record[Metadata, Status]) {
	log := s.log.With("id", rec.ID)
	cfg, err := decodeConfig(rec.Metadata.Config)
	if err != nil || rec.Metadata.ID != rec.ID {
		log.Warn("skipping an unreadable pod record", "error", err)
		return
	}
	p := &pod{meta: rec.Metadata, config: cfg, opts: s.recoveredOptions(cfg, rec.Metadata.Handler), key: nameKey(cfg.GetMetadata())}
	switch {
	case errors.Is(rec.StatusErr, store.ErrNoStatus), rec.StatusErr == nil && rec.Status.State == StateCreating:
		st := s.foundStatus(p)
		st.Cgroup = rec.Status.Cgroup
		p.cur.Store(&revision{Status: st, rev: rec.Revision})
		ctx, cancel := context.WithTimeout(ctx, undoTimeout)
		defer cancel()
		p.op.Lock()
		err := s.remove(ctx, p)
		p.op.Unlock()
		if err == nil {
			log.Info("undid a pod create that berthd's stop had cut short", "pod", p.key)
			return
		}
		log.Error("undoing a pod create cut short by berthd's stop failed; the pod stays NOTREADY", "error", err)
	case rec.StatusErr != nil:
		st := s.foundStatus(p)
		st.State, st.Reason = StateUnknown, fmt.Sprintf("status record unreadable: %v", rec.StatusErr)
		p.cur.Store(&revision{Status: st})
		log.Warn("pod status unreadable; listing the pod NOTREADY", "error", rec.StatusErr)
	default:
		p.cur.Store(&revision{Status: rec.Status, rev: rec.Revision})
		s.reconcile(p)
	}
	s.add(p)
	if err := s.names.Hold(p.key, p.meta.ID, p.meta.Fingerprint); err != nil {
		log.Warn("recovered pod shares its name with another", "error", err)
	}
}

// reconcile checks a recorded pod against the node and reattaches its pause.
func (s *Service) reconcile(p *pod) {
	st := p.status()
	if st.Infra != nil {
		proc, err := infra.Reattach(*st.Infra)
		switch {
		case err == nil:
			p.proc.Store(proc)
		case errdefs.IsNotFound(err):
			s.notReady(p, "pause exited while berthd was down")
		default:
			s.notReady(p, fmt.Sprintf("pause: %v", err))
		}
	}
	if net := st.Namespaces.Net; net != "" {
		if ok, _ := nspin.IsPinned(net); !ok {
			s.notReady(p, "network namespace gone while berthd was down")
		}
	}
}

// notReady marks a READY pod NOTREADY in memory only.
func (s *Service) notReady(p *pod, reason string) {
	cur := p.status()
	if cur.State != StateReady {
		return
	}
	st := cur.Status
	st.State, st.Reason = StateNotReady, reason
	p.cur.Store(&revision{Status: st, rev: cur.rev})
	s.log.Warn("recovered pod is not ready", "id", p.meta.ID, "pod", p.key, "reason", reason)
}

// foundStatus is the status of a pod whose status record is missing or unreadable: every
// resource that may exist is listed, at the places berth puts it. Releasing what does
// not exist is a no-op.
func (s *Service) foundStatus(p *pod) Status {
	dir := s.podDir(p.meta.ID)
	st := Status{State: StateNotReady, Namespaces: nspin.Found(filepath.Join(dir, nsDir))}
	if shm := filepath.Join(dir, podfiles.ShmDir); exists(shm) {
		st.Shm = shm
	}
	st.Network = !p.opts.hostNetwork
	st.InfraContainer = p.opts.sharedPID
	return st
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// recoveredOptions derives a recorded pod's options. The config was valid when the pod
// was made; if it no longer is (the handler left the configuration), what is needed to
// report and release the pod is read without validation.
func (s *Service) recoveredOptions(cfg *runtimeapi.PodSandboxConfig, handler string) *options {
	if o, err := s.parse(cfg, handler); err == nil {
		return o
	}
	ns := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions()
	return &options{
		handler:      handler,
		hostNetwork:  ns.GetNetwork() == runtimeapi.NamespaceMode_NODE,
		hostIPC:      ns.GetIpc() == runtimeapi.NamespaceMode_NODE,
		sharedPID:    ns.GetPid() == runtimeapi.NamespaceMode_POD,
		hostname:     cfg.GetHostname(),
		cgroupParent: cfg.GetLinux().GetCgroupParent(),
	}
}

// tearDownOrphans DELs the CNI attachments of pods that have no record. Berth never
// leaves such attachments (a record is written before the ADD and removed after the
// DEL), but a record lost to disk trouble can.
func (s *Service) tearDownOrphans(ctx context.Context) {
	ids, err := s.cfg.Network.AttachedPods()
	if err != nil {
		s.log.Warn("cannot list cached CNI attachments", "error", err)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, undoTimeout)
	defer cancel()
	for _, id := range ids {
		s.mu.RLock()
		_, known := s.pods[id]
		s.mu.RUnlock()
		if known {
			continue
		}
		if err := s.cfg.Network.Teardown(ctx, network.Pod{ID: id}); err != nil {
			s.log.Warn("tearing down the network of an unknown pod", "id", id, "error", err)
			continue
		}
		s.log.Info("tore down the network of a pod berth has no record of", "id", id)
	}
}
