package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/berth-runtime/berth/sandbox/monitor"
	"github.com/berth-runtime/berth/sandbox/rootfs"
	"github.com/berth-runtime/berth/sandbox/runtime"
	"github.com/berth-runtime/berth/sandbox/store"
)

// recoverContainers loads the container records after the pods (see doc_containers.go
// for the contract). Monitors outlive berthd, so a container that was running is
// simply watched again: its monitor answers, or has left the exit in its file. Nothing
// running is stopped, except the containers of pods that no longer exist and creates
// that berthd's stop cut short, which are removed.
func (s *Service) recoverContainers(ctx context.Context) {
	recs, errs := s.ctrStore.Load()
	for _, err := range errs {
		s.log.Warn("skipping an unreadable container record", "error", err)
	}
	for _, rec := range recs {
		s.recoverContainer(ctx, rec)
	}
	s.sweepContainerLeftovers()
	if len(recs) > 0 {
		s.mu.RLock()
		n := len(s.ctrs)
		s.mu.RUnlock()
		s.log.Info("containers recovered", "containers", n, "records", len(recs), "unreadable", len(errs))
	}
}

func (s *Service) recoverContainer(ctx context.Context, rec store.Record[ContainerMetadata, ContainerStatus]) {
	log := s.log.With("id", rec.ID)
	cfg, err := decodeContainerConfig(rec.Metadata.Config)
	if err != nil || rec.Metadata.ID != rec.ID {
		log.Warn("skipping an unreadable container record", "error", err)
		return
	}
	c := &container{meta: rec.Metadata, config: cfg, exited: make(chan struct{})}
	p, podErr := s.get(rec.Metadata.PodID)
	if podErr == nil {
		c.key = containerKey(p, cfg.GetMetadata())
	}
	// Whatever may exist, for a record that cannot say.
	everything := ContainerStatus{State: ContainerUnknown, Runtime: true, Rootfs: true, Leased: true}
	cut := errors.Is(rec.StatusErr, store.ErrNoStatus) || (rec.StatusErr == nil && rec.Status.State == "")
	switch {
	case cut || podErr != nil:
		st := rec.Status
		if rec.StatusErr != nil || cut {
			st = everything
		}
		c.cur.Store(&containerRevision{ContainerStatus: st, rev: rec.Revision})
		s.watchExit(c)
		ctx, cancel := context.WithTimeout(ctx, undoTimeout)
		defer cancel()
		c.op.Lock()
		err := s.removeContainer(ctx, c)
		c.op.Unlock()
		if err == nil {
			log.Info("removed a container whose create was cut short or whose pod is gone")
			return
		}
		log.Error("removing a leftover container failed; it stays listed", "error", err)
	case rec.StatusErr != nil:
		everything.Reason = fmt.Sprintf("status record unreadable: %v", rec.StatusErr)
		c.cur.Store(&containerRevision{ContainerStatus: everything})
		s.watchExit(c)
	case rec.Status.State == ContainerExited:
		c.cur.Store(&containerRevision{ContainerStatus: rec.Status, rev: rec.Revision})
		close(c.exited)
	case rec.Status.State == ContainerCreated && !rec.Status.Runtime && !monitor.Invoked(s.monitorOf(rec.ID)):
		c.cur.Store(&containerRevision{ContainerStatus: rec.Status, rev: rec.Revision})
	default:
		st := rec.Status
		if st.State == ContainerCreated {
			// berthd stopped during StartContainer: the runtime says whether it ran.
			st.Runtime = true
			st = s.interruptedStart(ctx, c, st)
		}
		c.cur.Store(&containerRevision{ContainerStatus: st, rev: rec.Revision})
		s.watchExit(c)
	}
	s.addContainer(c)
	if c.key != "" {
		if err := s.ctrNames.Hold(c.key, c.meta.ID, c.meta.Fingerprint); err != nil {
			log.Warn("recovered container shares its name with another", "error", err)
		}
	}
}

// holderRE matches the image lease holders containers use: an id, or an id and a
// volume index.
var holderRE = regexp.MustCompile(`^([0-9a-f]{64})(-volume-[0-9]+)?$`)

// sweepContainerLeftovers removes what a create cut short before its record was
// written: state and writable-layer directories, and image leases, of ids that have
// no record.
func (s *Service) sweepContainerLeftovers() {
	known := func(id string) bool {
		s.mu.RLock()
		defer s.mu.RUnlock()
		_, ok := s.ctrs[id]
		return ok
	}
	for _, dir := range []string{s.cfg.ContainerStateDir, s.cfg.ContainerRWDir} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			id := e.Name()
			if !holderRE.MatchString(id) || known(id) {
				continue
			}
			if err := s.removeContainerDirs(id); err != nil {
				s.log.Warn("removing a leftover container directory", "id", id, "error", err)
			}
		}
	}
	if s.cfg.Images == nil {
		return
	}
	for _, h := range s.cfg.Images.Holders() {
		m := holderRE.FindStringSubmatch(h)
		if m == nil || known(m[1]) {
			continue
		}
		if err := s.cfg.Images.Release(h); err != nil {
			s.log.Warn("releasing a leftover image lease", "holder", h, "error", err)
		}
	}
}

// removeContainerDirs unmounts and removes a container's directories, by id alone.
func (s *Service) removeContainerDirs(id string) error {
	// A monitor the cut-short create spawned may be waiting for a start.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := monitor.Abort(ctx, s.monitorOf(id), 0); err != nil {
		return err
	}
	c := &container{meta: ContainerMetadata{ID: id}}
	if err := s.unmountVolumes(c); err != nil {
		return err
	}
	if err := rootfs.Remove(s.rwDirOf(id), s.rootfsOf(id)); err != nil {
		return err
	}
	return os.RemoveAll(filepath.Clean(s.ctrDir(id)))
}

// interruptedStart settles a container whose StartContainer berthd's stop cut short:
// running if the runtime has it running (its monitor then answers the watcher), else
// the watcher finds the exit, or no monitor at all and records the start as lost.
func (s *Service) interruptedStart(ctx context.Context, c *container, st ContainerStatus) ContainerStatus {
	h := s.handlerOf(c.meta.Handler)
	if h.Runtime == nil {
		return st
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if rs, err := h.Runtime.State(ctx, c.meta.ID); err == nil && rs.Status == runtime.StatusRunning {
		st.State, st.Pid, st.StartedAt = ContainerRunning, rs.Pid, rs.Created.UnixNano()
	}
	return st
}
