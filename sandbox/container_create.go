package sandbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	nriapi "github.com/containerd/nri/pkg/api"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/sandbox/cleanup"
	"github.com/berth-runtime/berth/sandbox/monitor"
	"github.com/berth-runtime/berth/sandbox/registrar"
	"github.com/berth-runtime/berth/sandbox/rootfs"
	"github.com/berth-runtime/berth/sandbox/spec"
)

// CreateContainer creates a container in pod podID (CreateContainer) and returns its
// id. The container's process waits for StartContainer. A retry of the same request
// (same pod, same config) while or after the first one runs gets the same id; another
// request for a name that is taken fails with errdefs.ErrAlreadyExists.
func (s *Service) CreateContainer(ctx context.Context, podID string, cfg *runtimeapi.ContainerConfig) (string, error) {
	md := cfg.GetMetadata()
	switch {
	case md.GetName() == "":
		return "", errdefs.InvalidArgument("container metadata must have a name")
	case cfg.GetImage().GetImage() == "":
		return "", errdefs.InvalidArgument("container image is empty")
	case s.cfg.Images == nil || s.cfg.MonitorPath == "":
		return "", errdefs.FailedPrecondition("berthd runs without an image store or monitor: containers cannot be created")
	}
	p, err := s.get(podID)
	if err != nil {
		return "", err
	}
	logPath, err := containerLogPath(p.config.GetLogDirectory(), cfg.GetLogPath())
	if err != nil {
		return "", err
	}
	// Creates hold the pod's life lock shared: StopPod and RemovePod take it
	// exclusively, so no container appears in a pod while it goes.
	p.life.RLock()
	defer p.life.RUnlock()
	if !p.ready() {
		return "", errdefs.FailedPrecondition(fmt.Sprintf("pod sandbox %s is not ready", p.meta.ID))
	}
	fp, err := containerFingerprint(p.meta.ID, cfg)
	if err != nil {
		return "", err
	}
	res, owner, err := s.ctrNames.Reserve(containerKey(p, md), newID(), fp)
	if err != nil {
		return "", err
	}
	if !owner {
		return res.Wait(ctx)
	}
	c, err := s.createContainer(ctx, p, res, cfg, logPath)
	s.ctrNames.Finish(res, err)
	if err != nil {
		return "", err
	}
	return c.meta.ID, nil
}

// containerLogPath joins the pod's log directory and the container's log path, which
// must stay inside it. Without a log directory the container logs nowhere.
func containerLogPath(dir, rel string) (string, error) {
	if rel == "" || dir == "" {
		return "", nil
	}
	if filepath.IsAbs(rel) {
		return "", errdefs.InvalidArgument(fmt.Sprintf("log path %q must be relative to the pod's log directory", rel))
	}
	full := filepath.Join(dir, rel)
	if r, err := filepath.Rel(dir, full); err != nil || r == "." || r == ".." || strings.HasPrefix(r, "../") {
		return "", errdefs.InvalidArgument(fmt.Sprintf("log path %q leaves the pod's log directory", rel))
	}
	return full, nil
}

// containerFingerprint identifies a CreateContainer request.
func containerFingerprint(podID string, cfg *runtimeapi.ContainerConfig) (string, error) {
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(cfg)
	if err != nil {
		return "", fmt.Errorf("encode container config: %w", err)
	}
	h := sha256.New()
	h.Write([]byte(podID))
	h.Write([]byte{0})
	h.Write(data)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// createContainer is the transaction: each step pushes its undo; a failure runs them
// in reverse order under a fresh context. The record is written last, once the root
// filesystem and the bundle exist; recovery removes what a crash leaves before it
// (state directories and leases without a record).
func (s *Service) createContainer(reqCtx context.Context, p *pod, res *registrar.Reservation, cfg *runtimeapi.ContainerConfig, logPath string) (*container, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(reqCtx), s.cfg.CreateTimeout)
	defer cancel()
	start := time.Now()
	id := res.ID
	raw, err := protojson.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encode container config: %w", err)
	}
	c := &container{
		meta: ContainerMetadata{
			ID: id, PodID: p.meta.ID, Name: cfg.GetMetadata().GetName(), Attempt: cfg.GetMetadata().GetAttempt(),
			Handler: p.meta.Handler, CreatedAt: time.Now().UnixNano(), Image: cfg.GetImage().GetImage(),
			LogPath: logPath, Fingerprint: res.Fingerprint, Config: raw,
		},
		config: cfg, key: res.Name, exited: make(chan struct{}),
	}
	st := &ContainerStatus{}
	var undo cleanup.Stack
	// Until the container is listed: a plugin that connects meanwhile gets it in its
	// snapshot or sees its CreateContainer, never neither.
	unblock := sync.OnceFunc(s.cfg.NRI.BlockSync())
	defer unblock() // also if the create panics: a plugin's sync must never wait for ever
	err = s.buildContainer(ctx, p, c, st, &undo)
	if err != nil {
		unblock()
		err = withContext(ctx, err)
		s.log.Warn("container create failed; undoing it", "id", id, "container", c.key, "error", err)
		if uerr := undo.Run(ctx, undoTimeout); uerr != nil {
			s.log.Error("undo of a failed container create failed; recovery retries it", "id", id, "error", uerr)
		}
		return nil, err
	}
	undo.Release()
	s.addContainer(c)
	unblock()
	s.cfg.NRI.PostCreateContainer(ctx, s.nriPodOf(c), s.nriContainer(c))
	s.emitContainerEvent(c, runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT)
	s.log.Info("container created", "id", id, "container", c.key, "pod", p.meta.ID,
		"took", time.Since(start).Round(time.Microsecond))
	return c, nil
}

// buildContainer makes the container's parts: image lease, directories, root
// filesystem, image volumes, spec (the bundle), record. The OCI runtime is not asked
// for anything yet: StartContainer has the monitor run the bundle in one runtime exec
// (`run --detach`), as containerd creates its task only at start.
func (s *Service) buildContainer(ctx context.Context, p *pod, c *container, st *ContainerStatus, undo *cleanup.Stack) error {
	id := c.meta.ID
	img, err := s.cfg.Images.Lease(id, c.meta.Image)
	if err != nil {
		return err
	}
	undo.Push("image lease", func(context.Context) error { return s.cfg.Images.Release(id) })
	st.Leased = true
	c.meta.ImageID, c.meta.ImageRef = img.ID, img.Ref
	imgCfg, err := parseImageConfig(img.Config)
	if err != nil {
		return err
	}
	c.meta.StopSignal = imgCfg.StopSignal

	if err := os.MkdirAll(s.monitorOf(id), 0o700); err != nil {
		return fmt.Errorf("container directory: %w", err)
	}
	undo.Push("container directory", func(context.Context) error { return os.RemoveAll(s.ctrDir(id)) })
	if logPath := c.meta.LogPath; logPath != "" {
		if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
			return fmt.Errorf("log directory: %w", err)
		}
	}
	names, err := s.containerCgroup(p, id)
	if err != nil {
		return err
	}
	// First, so that the monitor sets up while the rest of the create runs.
	if err := s.spawnMonitor(c, names); err != nil {
		return err
	}
	undo.Push("monitor", func(context.Context) error {
		monitor.Kill(c.pending.PID)
		c.pending = nil
		return nil
	})
	// The writable layer is the container's files: reachable by root alone (the
	// overlay's upper directory inside keeps 0755, the mode of the container's /).
	// Its undo goes first: a mount that fails still leaves that directory.
	if err := os.MkdirAll(s.rwDirOf(id), 0o700); err != nil {
		return fmt.Errorf("container writable layer: %w", err)
	}
	undo.Push("rootfs", func(context.Context) error { return rootfs.Remove(s.rwDirOf(id), s.rootfsOf(id)) })
	if err := s.mountRootfs(p, id, img.Layers); err != nil {
		return err
	}
	st.Rootfs = true

	mounts, err := s.imageVolumes(c, undo)
	if err != nil {
		return err
	}
	in := specInput{
		pod: p, podSt: p.status(), cfg: c.config, image: imgCfg, rootfs: s.rootfsOf(id),
		mounts: mounts, cgroupsPath: names.CgroupsPath, handler: s.handlerOf(p.meta.Handler),
	}
	if in.targetPID, err = s.targetPIDNamespace(c.config); err != nil {
		return err
	}
	sc := c.config.GetLinux().GetSecurityContext()
	if in.processLabel, in.mountLabel, err = spec.SELinuxLabels(sc.GetSelinuxOptions(), sc.GetPrivileged()); err != nil {
		return err
	}
	c.meta.ProcessLabel = in.processLabel
	undo.Push("SELinux label", func(context.Context) error { spec.ReleaseSELinuxLabel(in.processLabel); return nil })
	sp, err := s.buildSpec(in)
	if err != nil {
		return err
	}
	if err := s.createHooks(ctx, p, c, sp, undo); err != nil {
		return err
	}
	c.meta.User = sp.Process.User
	data, err := json.Marshal(sp)
	if err != nil {
		return fmt.Errorf("encode spec: %w", err)
	}
	if err := os.WriteFile(filepath.Join(s.bundleOf(id), "config.json"), data, 0o600); err != nil {
		return fmt.Errorf("write bundle: %w", err)
	}
	if err := s.ctrStore.Create(id, c.meta); err != nil {
		return err
	}
	undo.Push("record", func(context.Context) error { return s.ctrStore.Delete(id) })
	st.State, st.MonitorPid = ContainerCreated, c.pending.PID
	return s.recordContainer(c, *st)
}

// mountRootfs mounts the container's root filesystem: through idmapped layers in a
// user-namespaced pod, whose root must also be able to reach it (the directories above
// it 0711, as berthd makes its root and state: runc resolves the path from inside the
// namespace).
func (s *Service) mountRootfs(p *pod, id string, layers []string) error {
	u, userns := p.opts.userns, p.status().Namespaces.User
	if u == nil || userns == "" {
		return rootfs.Mount(layers, s.rwDirOf(id), s.rootfsOf(id), false)
	}
	for _, dir := range []string{s.cfg.ContainerStateDir, s.ctrDir(id)} {
		if err := os.Chmod(dir, 0o711); err != nil {
			return fmt.Errorf("container directory: %w", err)
		}
	}
	uid, gid := u.hostRoot()
	return rootfs.MountIDMapped(layers, s.rwDirOf(id), s.rootfsOf(id), userns, rootfs.Owner{UID: uid, GID: gid})
}

// targetPIDNamespace is the PID namespace of the container a TARGET PID mode names.
func (s *Service) targetPIDNamespace(cfg *runtimeapi.ContainerConfig) (string, error) {
	ns := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions()
	if ns.GetPid() != runtimeapi.NamespaceMode_TARGET {
		return "", nil
	}
	t, err := s.getContainer(ns.GetTargetId())
	if err != nil {
		return "", errdefs.InvalidArgument(fmt.Sprintf("PID namespace target: %v", err))
	}
	st := t.status()
	if st.State != ContainerRunning || st.Pid == 0 {
		return "", errdefs.FailedPrecondition(fmt.Sprintf("PID namespace target %s is not running", t.meta.ID))
	}
	return fmt.Sprintf("/proc/%d/ns/pid", st.Pid), nil
}

// createHooks runs the NRI plugins' CreateContainer hooks, which adjust sp in place; a
// plugin that fails them fails the create. Should a later step fail, the plugins are
// told the container went.
func (s *Service) createHooks(ctx context.Context, p *pod, c *container, sp *specs.Spec, undo *cleanup.Stack) error {
	np := s.nriPod(p, &p.status().Status)
	c.nriSpec.Store(nriFromSpec(sp))
	undo.Push("NRI container", func(ctx context.Context) error {
		nc := s.nriContainer(c)
		s.cfg.NRI.StopContainer(ctx, np, nc)
		s.cfg.NRI.RemoveContainer(ctx, np, nc)
		return nil
	})
	// A copy: NRI's adaptation writes each plugin's adjustment into the request, and
	// the container's maps are its config's.
	req := proto.Clone(s.nriContainer(c)).(*nriapi.Container)
	if err := s.cfg.NRI.CreateContainer(ctx, np, req, sp); err != nil {
		return fmt.Errorf("NRI: %w", err)
	}
	c.nriSpec.Store(nriFromSpec(sp))
	return nil
}
