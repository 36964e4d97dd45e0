package sandbox

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/sandbox/cleanup"
	"github.com/berth-runtime/berth/sandbox/registrar"
)

// RunPod creates and starts a pod and returns its id (RunPodSandbox).
//
// The create runs on its own, under the Service's CreateTimeout rather than ctx: when ctx
// ends first, RunPod returns ctx's error and the create goes on, so that kubelet's retry
// (the same request) joins it and gets its id (see registrar). A retry of a request whose
// pod exists gets that pod's id; a different request for the same pod name and attempt
// fails with errdefs.ErrAlreadyExists.
func (s *Service) RunPod(ctx context.Context, cfg *runtimeapi.PodSandboxConfig, handler string) (string, error) {
	o, err := s.parse(cfg, handler)
	if err != nil {
		return "", err
	}
	if o.userns != nil {
		// The containers' directory itself is opened up by the first container of such a
		// pod (mountRootfs); the directories above it are the node's.
		if err := searchableByOthers(s.cfg.StateDir, filepath.Dir(s.cfg.ContainerStateDir), s.cfg.PauseRootfs); err != nil {
			return "", err
		}
	}
	fp, err := fingerprint(cfg, o.handler)
	if err != nil {
		return "", err
	}
	key := nameKey(cfg.GetMetadata())
	res, owner, err := s.names.Reserve(key, newID(), fp)
	if err != nil {
		return "", err
	}
	if owner {
		if err := s.startCreate(func() { s.create(ctx, res, cfg, o) }); err != nil {
			s.names.Finish(res, err)
			return "", err
		}
	}
	id, err := res.Wait(ctx)
	if err != nil {
		return "", err
	}
	if !owner {
		p, err := s.get(id)
		if err != nil || !p.ready() {
			return "", fmt.Errorf("pod %s (%s) exists and is not ready: %w", key, id, errdefs.ErrAlreadyExists)
		}
		s.log.Info("RunPodSandbox retried: returning the pod the first call created", "pod", key, "id", id)
	}
	return id, nil
}

// create makes the pod of res and finishes res. It is the transaction: each step that
// makes something pushes its undo; any failure runs the undo steps in reverse order. If
// an undo step fails, the pod stays recorded (and listed, NOTREADY) with what is left,
// for Stop, Remove or recovery to finish.
func (s *Service) create(reqCtx context.Context, res *registrar.Reservation, cfg *runtimeapi.PodSandboxConfig, o *options) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(reqCtx), s.cfg.CreateTimeout)
	defer cancel()
	start := time.Now()
	p, err := s.newPod(res, cfg, o)
	if err != nil {
		s.names.Finish(res, err)
		return
	}
	if err := s.store.Create(p.meta.ID, p.meta); err != nil {
		s.names.Finish(res, err)
		return
	}
	var undo cleanup.Stack
	st, err := s.build(ctx, p, &undo)
	if err == nil {
		err = s.runPodHooks(ctx, p, st, &undo)
	}
	if err == nil {
		st.State = StateReady
		err = s.record(p, *st)
	}
	if err != nil {
		err = withContext(ctx, err)
		s.abandon(ctx, p, st, &undo, err)
		s.names.Finish(res, err)
		return
	}
	undo.Release()
	s.add(p)
	s.names.Finish(res, nil)
	s.emitPodEvent(p.meta.ID, runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT, nil)
	s.emitPodEvent(p.meta.ID, runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT, nil)
	s.log.Info("pod sandbox ready", "id", p.meta.ID, "pod", p.key, "ips", st.IPs,
		"infra", st.Infra != nil, "took", time.Since(start).Round(time.Microsecond))
}

// runPodHooks runs the NRI plugins' RunPodSandbox hooks once the pod is made, before it
// is listed: a plugin that fails it fails the create. Should a later step fail, the
// plugins are told the pod went.
func (s *Service) runPodHooks(ctx context.Context, p *pod, st *Status, undo *cleanup.Stack) error {
	np := s.nriPod(p, st)
	undo.Push("NRI pod", func(ctx context.Context) error {
		s.cfg.NRI.StopPodSandbox(ctx, np)
		s.cfg.NRI.RemovePodSandbox(ctx, np)
		return nil
	})
	if err := s.cfg.NRI.RunPodSandbox(ctx, np); err != nil {
		return fmt.Errorf("NRI: %w", err)
	}
	return nil
}

// abandon undoes a failed create. When every undo step succeeds the record goes too;
// otherwise the record stays, NOTREADY, listing what is left (each undo step clears
// what it released from st).
func (s *Service) abandon(ctx context.Context, p *pod, st *Status, undo *cleanup.Stack, cause error) {
	log := s.log.With("id", p.meta.ID, "pod", p.key)
	log.Warn("pod sandbox create failed; undoing it", "error", cause)
	undoErr := undo.Run(ctx, undoTimeout)
	if undoErr == nil {
		if err := s.store.Delete(p.meta.ID); err != nil {
			log.Error("removing the record of a failed pod", "error", err)
		}
		return
	}
	st.State = StateNotReady
	st.Reason = fmt.Sprintf("create failed (%v) and its undo failed (%v)", cause, undoErr)
	if err := s.record(p, *st); err != nil {
		log.Error("recording a half-undone pod", "error", err)
	}
	s.add(p) // listed NOTREADY under its own id; its name is free again
	log.Error("undo of a failed pod create failed; the pod stays NOTREADY for Stop/Remove", "error", undoErr)
}

// newPod makes the pod's immutable part.
func (s *Service) newPod(res *registrar.Reservation, cfg *runtimeapi.PodSandboxConfig, o *options) (*pod, error) {
	raw, err := protojson.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encode pod config: %w", err)
	}
	md := cfg.GetMetadata()
	return &pod{
		meta: Metadata{
			ID: res.ID, Name: md.GetName(), Namespace: md.GetNamespace(), UID: md.GetUid(),
			Attempt: md.GetAttempt(), Handler: o.handler, CreatedAt: time.Now().UnixNano(),
			Fingerprint: res.Fingerprint, Config: raw,
		},
		config: cfg,
		opts:   o,
		key:    res.Name,
	}, nil
}

// withContext makes an error caused by the create's own deadline say so.
func withContext(ctx context.Context, err error) error {
	if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		return fmt.Errorf("%w (%w)", err, ctx.Err())
	}
	return err
}
