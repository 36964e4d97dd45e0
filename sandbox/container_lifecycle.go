package sandbox

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"time"

	nriapi "github.com/containerd/nri/pkg/api"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/trash"
	"github.com/berth-runtime/berth/sandbox/monitor"
	"github.com/berth-runtime/berth/sandbox/rootfs"
	"github.com/berth-runtime/berth/sandbox/spec"
)

// killWait bounds how long Stop waits for a container to die after SIGKILL: the
// kernel may take a while to tear down a large process tree, but not forever.
const killWait = 30 * time.Second

// StartContainer starts a created container: its monitor runs the bundle through the
// OCI runtime (`run --detach`). A start that fails leaves the container EXITED with
// reason StartError and the runtime's message, as kubelet expects.
func (s *Service) StartContainer(ctx context.Context, id string) error {
	c, err := s.getContainer(id)
	if err != nil {
		return err
	}
	c.op.Lock()
	defer c.op.Unlock()
	if c.removed {
		return errdefs.NotFound(fmt.Sprintf("container %q not found", id))
	}
	if st := c.status(); st.State != ContainerCreated || st.Runtime {
		return errdefs.FailedPrecondition(fmt.Sprintf("container %s is %s, not created", c.meta.ID, st.State))
	}
	p, err := s.get(c.meta.PodID)
	if err != nil || !p.ready() {
		return errdefs.FailedPrecondition(fmt.Sprintf("pod sandbox %s of container %s is not ready", c.meta.PodID, c.meta.ID))
	}
	names, err := s.containerCgroup(p, c.meta.ID)
	if err != nil {
		return err
	}
	np := s.nriPod(p, &p.status().Status)
	if err := s.cfg.NRI.StartContainer(ctx, np, s.nriContainer(c)); err != nil {
		return fmt.Errorf("start container %s: NRI: %w", c.meta.ID, err)
	}
	// No record before the start: the monitor marks the runtime invoked before it runs
	// it, which tells recovery that a start was under way (monitor.Invoked).
	st := c.status().ContainerStatus
	startedAt := time.Now().UnixNano()
	started, err := s.startMonitor(ctx, c, names)
	c.pending = nil
	if err != nil {
		st.State, st.ExitCode, st.Reason, st.Message = ContainerExited, startErrorCode, "StartError", err.Error()
		st.StartedAt, st.FinishedAt = startedAt, time.Now().UnixNano()
		if rerr := s.recordContainer(c, st); rerr != nil {
			err = errors.Join(err, rerr)
		}
		s.emitContainerEvent(c, runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT)
		return fmt.Errorf("start container %s: %w", c.meta.ID, err)
	}
	st.Runtime = true
	st.State, st.Pid, st.StartedAt = ContainerRunning, started.PID, startedAt
	if started.MonitorPID > 0 {
		st.MonitorPid = started.MonitorPID
	}
	err = s.recordContainer(c, st)
	// Before the watcher starts, which may emit STOPPED at once.
	s.emitContainerEvent(c, runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT)
	s.watchExit(c) // also when the record failed: the container runs
	s.cfg.NRI.PostStartContainer(ctx, np, s.nriContainer(c))
	return err
}

// startErrorCode is the exit code of a container that could not start (containerd's).
const startErrorCode = 128

// StopContainer stops a container: its stop signal (the config's, else the image's
// STOPSIGNAL, else SIGTERM), then after timeout seconds SIGKILL to every process in
// it. A timeout of 0 kills at once. Stopping an absent or exited container succeeds.
func (s *Service) StopContainer(ctx context.Context, id string, timeout int64) error {
	return s.idempotentContainer(id, func(c *container) error {
		return s.stopContainer(ctx, c, time.Duration(max(timeout, 0))*time.Second)
	})
}

// idempotentContainer runs op on the container with its operation lock held. An absent
// (or just removed) container is not an error: Stop and Remove are idempotent.
func (s *Service) idempotentContainer(id string, op func(*container) error) error {
	c, err := s.getContainer(id)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	c.op.Lock()
	defer c.op.Unlock()
	if c.removed {
		return nil
	}
	return op(c)
}

// stopContainer signals the container and waits for its exit to be recorded. c.op must
// be held.
func (s *Service) stopContainer(ctx context.Context, c *container, grace time.Duration) error {
	st := c.status()
	if st.State == ContainerExited || !st.Runtime {
		return nil
	}
	h := s.handlerOf(c.meta.Handler)
	if h.Runtime == nil {
		return errdefs.FailedPrecondition(fmt.Sprintf("runtime handler %q is not available", c.meta.Handler))
	}
	id := c.meta.ID
	if grace > 0 && st.State == ContainerRunning {
		sig, err := stopSignal(c)
		if err != nil {
			return err
		}
		if exited, err := s.signalAndWait(ctx, c, h.Runtime, sig, false, grace); exited || err != nil {
			return err
		}
	}
	if exited, err := s.signalAndWait(ctx, c, h.Runtime, syscall.SIGKILL, true, killWait); exited || err != nil {
		return err
	}
	return fmt.Errorf("container %s did not exit %s after SIGKILL: %w", id, killWait, errdefs.ErrUnavailable)
}

// signalAndWait sends sig (to every process with all) and waits up to wait for the
// container's exit to be recorded: exited says it was; an error, that the signal
// failed or ctx ended first.
func (s *Service) signalAndWait(ctx context.Context, c *container, rt OCIRuntime, sig syscall.Signal, all bool, wait time.Duration) (exited bool, err error) {
	if err := s.signal(ctx, c, rt, sig, all); err != nil {
		return false, fmt.Errorf("stop container %s: %w", c.meta.ID, err)
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-c.exited:
		return true, nil
	case <-ctx.Done():
		return false, ctx.Err()
	case <-timer.C:
		return false, nil
	}
}

// signal sends sig to the container's init, or with all to every process in it. The
// monitor sends it when it can (one round trip on its socket instead of a runtime
// exec): to the init, which for all is enough when the container has a PID namespace
// of its own, as the kernel then kills every process in it with its init. Otherwise,
// or when the monitor cannot, the OCI runtime does (`kill [--all]`).
func (s *Service) signal(ctx context.Context, c *container, rt OCIRuntime, sig syscall.Signal, all bool) error {
	ownPIDNS := c.config.GetLinux().GetSecurityContext().GetNamespaceOptions().GetPid() == runtimeapi.NamespaceMode_CONTAINER
	if !all || (sig == syscall.SIGKILL && ownPIDNS) {
		if err := monitor.Signal(ctx, s.monitorOf(c.meta.ID), sig); err == nil {
			return nil
		}
	}
	return rt.Kill(ctx, c.meta.ID, sig, all)
}

// stopSignal is the signal that asks the container to stop.
func stopSignal(c *container) (syscall.Signal, error) {
	// The CRI's names are "SIGNAL_SIGTERM"; 0 is SIGNAL_RUNTIME_DEFAULT.
	name := strings.TrimPrefix(c.config.GetStopSignal().String(), "SIGNAL_")
	if c.config.GetStopSignal() == runtimeapi.Signal_SIGNAL_RUNTIME_DEFAULT {
		name = c.meta.StopSignal
	}
	if name == "" {
		return syscall.SIGTERM, nil
	}
	return parseSignal(name)
}

// parseSignal reads "SIGTERM", "TERM" or "15".
func parseSignal(name string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(name); err == nil && n > 0 && n < 65 {
		return syscall.Signal(n), nil
	}
	up := strings.ToUpper(name)
	if !strings.HasPrefix(up, "SIG") {
		up = "SIG" + up
	}
	if sig := unix.SignalNum(up); sig != 0 {
		return sig, nil
	}
	return 0, errdefs.InvalidArgument(fmt.Sprintf("unknown stop signal %q", name))
}

// RemoveContainer removes a container, stopping it first (at once) if it runs.
// Removing an absent container succeeds.
func (s *Service) RemoveContainer(ctx context.Context, id string) error {
	return s.idempotentContainer(id, func(c *container) error { return s.removeContainer(ctx, c) })
}

// removeContainer releases everything of the container, last made first. What fails
// stays recorded for the next call. c.op must be held.
func (s *Service) removeContainer(ctx context.Context, c *container) error {
	id := c.meta.ID
	nc := s.nriContainer(c) // before its bundle goes
	if st := c.status(); st.State == ContainerCreated && !st.Runtime {
		if err := s.dropMonitor(ctx, c); err != nil {
			return fmt.Errorf("remove container %s: %w", id, err)
		}
	}
	if err := s.stopContainer(ctx, c, 0); err != nil {
		return err
	}
	if c.watching.Load() {
		// The exit watcher deletes the runtime's container after it records the exit
		// (dropRuntime): let it finish rather than race it.
		select {
		case <-c.exited:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	st := c.status().ContainerStatus
	var errs []error
	if st.Runtime {
		if h := s.handlerOf(c.meta.Handler); h.Runtime != nil {
			if err := deleteExited(ctx, h.Runtime, id); err != nil {
				errs = append(errs, err)
			} else {
				st.Runtime = false
			}
		} else {
			errs = append(errs, fmt.Errorf("runtime handler %q is not available", c.meta.Handler))
		}
	}
	if st.Rootfs && len(errs) == 0 {
		// Unmounted now; the directories go to the trash once the record is gone.
		err := s.unmountVolumes(c)
		if err == nil {
			err = rootfs.Detach(s.rwDirOf(id), s.rootfsOf(id))
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		if rerr := s.recordContainer(c, st); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	// The commit: the record's removal, durable when Delete returns. What follows
	// cannot be undone by a crash (the container does not come back); what it leaves
	// undone the next start finishes (the trash sweep, the leftover sweep of
	// recovery).
	if err := s.ctrStore.Delete(id); err != nil {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	s.trashContainerDirs(id)
	if st.Leased {
		s.reaper.releaseLater(holdersOf(c)...)
	}
	spec.ReleaseSELinuxLabel(c.meta.ProcessLabel)
	c.removed = true
	s.dropContainer(id)
	np := s.nriPodOf(c)
	s.nriStop(c, np, nc) // a container that never ran was never told it stopped
	s.cfg.NRI.RemoveContainer(ctx, np, nc)
	s.emitContainerEvent(c, runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT)
	s.ctrNames.Release(c.key, id)
	s.log.Debug("container removed", "id", id, "container", c.key)
	return nil
}

// deleteExited deletes the runtime's container of a container whose exit is recorded.
// A plain `delete` does all of it, and for a container that shares the pod's PID
// namespace also kills what its init left in its cgroup. `delete --force` would do the
// same at a fixed cost: runc (since 1.2) handles every forced delete as one of a live
// container, sending SIGKILL and sleeping 100 ms before it looks whether the init is
// gone. Force stays the fallback for a container the runtime still sees alive.
func deleteExited(ctx context.Context, rt OCIRuntime, id string) error {
	if err := rt.Delete(ctx, id, false); err != nil {
		return rt.Delete(ctx, id, true)
	}
	return nil
}

// holdersOf lists the image lease holders of the container: its image and its image
// volumes.
func holdersOf(c *container) []string {
	holders := []string{c.meta.ID}
	for _, v := range c.meta.ImageVolumes {
		holders = append(holders, v.Holder)
	}
	return holders
}

// trashContainerDirs moves the writable layer and the state directory of a removed
// container, whose mounts are gone, into their trash bins for the reaper to delete: a
// rename each, where deleting a writable layer takes as long as its files are many.
// What cannot be moved is left to the sweep of the next start, which removes the
// directories of containers without a record.
func (s *Service) trashContainerDirs(id string) {
	for _, m := range []struct {
		bin *trash.Bin
		dir string
	}{{s.rwTrash, s.rwDirOf(id)}, {s.stateTrash, s.ctrDir(id)}} {
		if err := m.bin.Put(m.dir); err != nil {
			s.log.Warn("moving a removed container's directory to the trash; the next start removes it",
				"id", id, "dir", m.dir, "error", err)
		}
	}
	s.reaper.poke()
}

// awaitExit waits for the container's monitor to report its exit, records it and
// deletes the runtime's container. It runs once per container and berthd: from the
// create, or from recovery.
func (s *Service) awaitExit(ctx context.Context, c *container) {
	defer close(c.exited)
	// After the exit is recorded, before Stop returns: plugins see the stop, also
	// of a container that exited on its own.
	defer func() { s.nriStop(c, s.nriPodOf(c), s.nriContainer(c)) }()
	reap := 0
	if c.ownMonitor {
		reap = c.status().MonitorPid
	}
	exit, err := monitor.Wait(ctx, s.monitorOf(c.meta.ID), reap)
	if s.recordExit(c, exit, err) {
		s.dropRuntime(ctx, c)
	}
}

// recordExit records the exit the monitor reported (or its absence, err) and emits
// STOPPED; false if the exit was recorded already.
func (s *Service) recordExit(c *container, exit monitor.Exit, err error) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.status().ContainerStatus
	if st.State == ContainerExited {
		return false
	}
	st.State = ContainerExited
	switch {
	case err == nil:
		st.ExitCode, st.Reason, st.Message = exit.ExitCode, exit.Reason, exit.Message
		st.FinishedAt = exit.FinishedAt.UnixNano()
	default:
		// The monitor is gone without a record (killed, or the node rebooted): the
		// exit code is unknowable. 255 and a reason that says so, as kubelet expects
		// some exit rather than none.
		st.ExitCode, st.Reason, st.Message = 255, "Unknown", err.Error()
		st.FinishedAt = time.Now().UnixNano()
	}
	if err := s.recordContainerLocked(c, st); err != nil {
		s.log.Error("recording a container's exit", "id", c.meta.ID, "error", err)
		// Still published in memory: Status and Stop must see the exit.
		c.cur.Store(&containerRevision{ContainerStatus: st, rev: c.status().rev})
	}
	// Under c.mu (emitting never takes it) and before c.exited closes, so that a Stop
	// then Remove sees STOPPED published before DELETED.
	s.emitContainerEvent(c, runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT)
	s.log.Debug("container exited", "id", c.meta.ID, "container", c.key, "code", st.ExitCode, "reason", st.Reason)
	return true
}

// dropRuntimeTimeout bounds the runtime delete after an exit.
const dropRuntimeTimeout = 30 * time.Second

// dropRuntime deletes the runtime's container of a container that has just exited, as
// containerd does on a task's exit: processes it left in a PID namespace shared with
// the pod die now rather than at its removal, its cgroup goes, its rootfs is unmounted,
// and RemoveContainer is left with the writable layer, the leases and the records. A
// failure leaves Runtime set for RemoveContainer to retry.
func (s *Service) dropRuntime(ctx context.Context, c *container) {
	h := s.handlerOf(c.meta.Handler)
	if h.Runtime == nil || !c.status().Runtime {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, dropRuntimeTimeout)
	defer cancel()
	if err := deleteExited(ctx, h.Runtime, c.meta.ID); err != nil {
		s.log.Warn("deleting an exited container from its runtime; RemoveContainer will retry",
			"id", c.meta.ID, "error", err)
		return
	}
	c.mu.Lock()
	st := c.status().ContainerStatus
	st.Runtime = false
	if err := s.recordContainerLocked(c, st); err != nil {
		// Remove deletes again (a no-op for an absent container) and records anew.
		s.log.Error("recording a container's runtime delete", "id", c.meta.ID, "error", err)
	}
	c.mu.Unlock()
	// The root filesystem's mount too (Rootfs says "may be mounted"): nothing enters an
	// exited container, and unmounting an overlay syncs its upper file system, the
	// largest cost RemoveContainer had left. Its writable layer stays until then.
	if st.Rootfs {
		if err := rootfs.Unmount(s.rootfsOf(c.meta.ID)); err != nil {
			s.log.Warn("unmounting an exited container's rootfs; RemoveContainer will retry",
				"id", c.meta.ID, "error", err)
		}
	}
}

// nriStop tells the NRI plugins that c stopped, once per container.
func (s *Service) nriStop(c *container, np *nriapi.PodSandbox, nc *nriapi.Container) {
	if c.nriStopped.Swap(true) {
		return
	}
	s.cfg.NRI.StopContainer(context.Background(), np, nc)
}
