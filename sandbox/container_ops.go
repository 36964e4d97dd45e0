package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"google.golang.org/protobuf/encoding/protojson"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/atomicfile"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/sandbox/cgroups"
	"github.com/berth-runtime/berth/sandbox/monitor"
	"github.com/berth-runtime/berth/sandbox/runtime"
)

// MaxExecOutput caps each of ExecSync's stdout and stderr, as kubelet's probes expect.
const MaxExecOutput = 16 << 20

// running returns c's handler when c runs, else an errdefs.ErrFailedPrecondition.
func (s *Service) running(c *container) (OCIRuntime, error) {
	if st := c.status(); st.State != ContainerRunning {
		return nil, errdefs.FailedPrecondition(fmt.Sprintf("container %s is %s, not running", c.meta.ID, st.State))
	}
	h := s.handlerOf(c.meta.Handler)
	if h.Runtime == nil {
		return nil, errdefs.FailedPrecondition(fmt.Sprintf("runtime handler %q is not available", c.meta.Handler))
	}
	return h.Runtime, nil
}

// ExecSync runs cmd in a running container and returns its output (each stream capped
// at MaxExecOutput) and exit code. timeout 0 means none; past it the process is killed
// and the call fails with errdefs.ErrDeadlineExceeded.
func (s *Service) ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) (stdout, stderr []byte, code int32, err error) {
	if len(cmd) == 0 {
		return nil, nil, 0, errdefs.InvalidArgument("exec command is empty")
	}
	c, err := s.getContainer(id)
	if err != nil {
		return nil, nil, 0, err
	}
	rt, err := s.running(c)
	if err != nil {
		return nil, nil, 0, err
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	var out, errOut cappedBuffer
	code, err = rt.Exec(ctx, c.meta.ID, runtime.ExecOptions{Args: cmd, Stdout: &out, Stderr: &errOut})
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, nil, 0, fmt.Errorf("exec in container %s: timeout %s exceeded: %w", c.meta.ID, timeout, context.DeadlineExceeded)
		}
		return nil, nil, 0, fmt.Errorf("exec in container %s: %w", c.meta.ID, err)
	}
	return out.Bytes(), errOut.Bytes(), code, nil
}

// cappedBuffer keeps the first MaxExecOutput bytes written to it and drops the rest
// (without failing the writer: the process must not get EPIPE for talking too much).
type cappedBuffer struct{ bytes.Buffer }

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if room := MaxExecOutput - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// UpdateContainerResources applies new resources to a created or running container
// and records them (ContainerStatus reports them).
func (s *Service) UpdateContainerResources(ctx context.Context, id string, r *runtimeapi.LinuxContainerResources) error {
	if r == nil {
		return errdefs.InvalidArgument("no linux resources to update")
	}
	c, st, err := s.lockUpdatable(id)
	if err != nil {
		return err
	}
	defer c.op.Unlock()
	res, err := cgroups.FromCRI(r)
	if err != nil {
		return err
	}
	res = s.cfg.Cgroups.WithoutUnavailable(res)
	if err := res.Validate(); err != nil {
		return err
	}
	np, nc := s.nriPodOf(c), s.nriContainer(c)
	oci, err := s.cfg.NRI.UpdateContainer(ctx, np, nc, res.ToOCI())
	if err != nil {
		return fmt.Errorf("update container %s: NRI: %w", c.meta.ID, err)
	}
	if err := s.applyResources(ctx, c, st, oci); err != nil {
		return fmt.Errorf("update container %s: %w", c.meta.ID, err)
	}
	defer s.cfg.NRI.PostUpdateContainer(ctx, np, nc)
	reported := r
	if !reflect.DeepEqual(oci, res.ToOCI()) { // a plugin changed them
		reported = criResources(r, oci)
	}
	raw, err := protojson.Marshal(reported)
	if err != nil {
		return fmt.Errorf("encode resources: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	next := c.status().ContainerStatus
	next.Resources = raw
	return s.recordContainerLocked(c, next)
}

// applyResources changes the resources of a running container through the OCI
// runtime, or of a created one in its bundle, which StartContainer runs.
func (s *Service) applyResources(ctx context.Context, c *container, st *containerRevision, res *specs.LinuxResources) error {
	if !st.Runtime {
		return updateBundle(s.bundleOf(c.meta.ID), func(sp *specs.Spec) error {
			if sp.Linux == nil {
				sp.Linux = &specs.Linux{}
			}
			next := *res
			next.Devices = nil // the device rules stay the create's
			if sp.Linux.Resources != nil {
				next.Devices = sp.Linux.Resources.Devices
			}
			sp.Linux.Resources = &next
			return nil
		})
	}
	h := s.handlerOf(c.meta.Handler)
	if h.Runtime == nil {
		return errdefs.FailedPrecondition(fmt.Sprintf("runtime handler %q is not available", c.meta.Handler))
	}
	return h.Runtime.Update(ctx, c.meta.ID, res)
}

// NRIUpdateContainer applies the resources an NRI plugin asked for to a created or
// running container (sandbox/nri.Runtime).
func (s *Service) NRIUpdateContainer(ctx context.Context, id string, res *specs.LinuxResources) error {
	if res == nil {
		return nil
	}
	c, st, err := s.lockUpdatable(id)
	if err != nil {
		return err
	}
	defer c.op.Unlock()
	return s.applyResources(ctx, c, st, res)
}

// lockUpdatable gets container id with its operation lock held (the caller unlocks
// c.op) for a change of its resources: it must be created or running, and not removed
// between the lookup and the lock (its record would come back).
func (s *Service) lockUpdatable(id string) (*container, *containerRevision, error) {
	c, err := s.getContainer(id)
	if err != nil {
		return nil, nil, err
	}
	c.op.Lock()
	st := c.status()
	if c.removed || (st.State != ContainerCreated && st.State != ContainerRunning) {
		c.op.Unlock()
		return nil, nil, errdefs.FailedPrecondition(fmt.Sprintf("container %s is %s", c.meta.ID, st.State))
	}
	return c, st, nil
}

// updateBundle rewrites a bundle's config.json through change, atomically.
func updateBundle(bundle string, change func(*specs.Spec) error) error {
	path := filepath.Join(bundle, "config.json")
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var sp specs.Spec
	if err := json.Unmarshal(data, &sp); err != nil {
		return fmt.Errorf("bundle %s: %w", bundle, err)
	}
	if err := change(&sp); err != nil {
		return err
	}
	if data, err = json.Marshal(&sp); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, data, 0o600)
}

// ReopenContainerLog has the container's monitor reopen its log file (kubelet rotated
// it). The container must be running.
func (s *Service) ReopenContainerLog(ctx context.Context, id string) error {
	c, err := s.getContainer(id)
	if err != nil {
		return err
	}
	if _, err := s.running(c); err != nil {
		return err
	}
	if c.meta.LogPath == "" {
		return nil
	}
	return monitor.Reopen(ctx, s.monitorOf(c.meta.ID))
}

// ContainerStats reads a container's usage from its cgroup; a container whose cgroup
// is gone (exited, created elsewhere) reports zeros with the time of reading.
func (s *Service) ContainerStats(id string) (*runtimeapi.ContainerStats, error) {
	c, err := s.getContainer(id)
	if err != nil {
		return nil, err
	}
	return s.containerStats(c), nil
}

// ListContainerStats reads the usage of the containers matching filter.
func (s *Service) ListContainerStats(filter *runtimeapi.ContainerStatsFilter) []*runtimeapi.ContainerStats {
	list := s.ListContainers(&runtimeapi.ContainerFilter{
		Id: filter.GetId(), PodSandboxId: filter.GetPodSandboxId(), LabelSelector: filter.GetLabelSelector(),
	})
	out := make([]*runtimeapi.ContainerStats, 0, len(list))
	for _, l := range list {
		if c, err := s.getContainer(l.Id); err == nil {
			out = append(out, s.containerStats(c))
		}
	}
	return out
}

func (s *Service) containerStats(c *container) *runtimeapi.ContainerStats {
	now := time.Now().UnixNano()
	out := &runtimeapi.ContainerStats{
		Attributes: &runtimeapi.ContainerAttributes{
			Id: c.meta.ID, Metadata: c.config.GetMetadata(), Labels: c.config.GetLabels(), Annotations: c.config.GetAnnotations(),
		},
		Cpu:           &runtimeapi.CpuUsage{Timestamp: now, UsageCoreNanoSeconds: &runtimeapi.UInt64Value{}},
		Memory:        &runtimeapi.MemoryUsage{Timestamp: now, WorkingSetBytes: &runtimeapi.UInt64Value{}, UsageBytes: &runtimeapi.UInt64Value{}},
		WritableLayer: s.writableLayerUsage(c.meta.ID),
	}
	p, err := s.get(c.meta.PodID)
	if err != nil {
		return out
	}
	names, err := cgroups.ContainerNames(s.cfg.Cgroups.Driver(), p.opts.cgroupParent, c.meta.ID)
	if err != nil {
		return out
	}
	st, err := s.cfg.Cgroups.ContainerStats(names.ContainerPath)
	if err != nil {
		return out
	}
	out.Cpu.UsageCoreNanoSeconds.Value = st.CPUUsageNanos
	out.Memory.UsageBytes.Value = st.MemoryUsageBytes
	out.Memory.WorkingSetBytes.Value = st.MemoryWorkingSetBytes
	return out
}

// writableLayerUsage is the container's writable layer as the last background refresh
// measured it (zero, timestamped now, before the first). Its filesystem is named by the
// directory of all writable layers, as ImageFsInfo's container filesystem, so that
// kubelet looks the filesystem's capacity up once, not once per container.
func (s *Service) writableLayerUsage(id string) *runtimeapi.FilesystemUsage {
	sample, ok := s.usage.Get(id)
	if !ok {
		sample.Time = time.Now()
	}
	return &runtimeapi.FilesystemUsage{
		Timestamp:  sample.Time.UnixNano(),
		FsId:       &runtimeapi.FilesystemIdentifier{Mountpoint: s.cfg.ContainerRWDir},
		UsedBytes:  &runtimeapi.UInt64Value{Value: sample.Bytes},
		InodesUsed: &runtimeapi.UInt64Value{Value: sample.Inodes},
	}
}

// ContainerFsUsage is the container filesystem of ImageFsInfo: the directory of the
// writable layers and what all of them use, as the last background refresh measured it.
func (s *Service) ContainerFsUsage() *runtimeapi.FilesystemUsage {
	total := s.usage.Total()
	if total.Time.IsZero() {
		total.Time = time.Now()
	}
	return &runtimeapi.FilesystemUsage{
		Timestamp:  total.Time.UnixNano(),
		FsId:       &runtimeapi.FilesystemIdentifier{Mountpoint: s.cfg.ContainerRWDir},
		UsedBytes:  &runtimeapi.UInt64Value{Value: total.Bytes},
		InodesUsed: &runtimeapi.UInt64Value{Value: total.Inodes},
	}
}
