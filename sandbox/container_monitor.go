package sandbox

import (
	"context"
	"errors"
	"fmt"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/sandbox/cgroups"
	"github.com/berth-runtime/berth/sandbox/monitor"
)

// A container's monitor is spawned at the beginning of CreateContainer and sets up
// (log, stdio, control socket) while the create leases, mounts and writes the bundle;
// it then waits. StartContainer asks it to run the bundle: one round trip and one
// runtime exec, no process start of berthd's own on the way. A container created by
// an earlier berthd is started through its waiting monitor too, or, if that monitor is
// gone, through a fresh one (monitor.Launch).

// monitorConfig is the monitor's job for container c.
func (s *Service) monitorConfig(c *container, rt OCIRuntime, names cgroups.Names) monitor.Config {
	id, cmd := c.meta.ID, rt.Command()
	return monitor.Config{
		ID: id, Runtime: cmd.Path, RuntimeRoot: cmd.Root, SystemdCgroup: cmd.SystemdCgroup,
		Bundle: s.bundleOf(id), Dir: s.monitorOf(id), LogPath: c.meta.LogPath,
		Terminal: c.config.GetTty(), Stdin: c.config.GetStdin(), StdinOnce: c.config.GetStdinOnce(),
		OOMFile: s.cfg.Cgroups.OOMFile(names.ContainerPath), Start: true,
	}
}

// spawnMonitor starts c's monitor without waiting for it (see above).
func (s *Service) spawnMonitor(c *container, names cgroups.Names) error {
	h := s.handlerOf(c.meta.Handler)
	if h.Runtime == nil {
		return errdefs.FailedPrecondition(fmt.Sprintf("runtime handler %q is not available", c.meta.Handler))
	}
	p, err := monitor.Spawn(s.cfg.MonitorPath, s.monitorConfig(c, h.Runtime, names))
	if err != nil {
		return err
	}
	c.pending = p
	c.ownMonitor = true
	return nil
}

// startMonitor has c's monitor run the container and returns the init's and the
// monitor's pids. On failure nothing of the runtime's container is left, and a monitor
// of this berthd's is reaped.
func (s *Service) startMonitor(ctx context.Context, c *container, names cgroups.Names) (monitor.Started, error) {
	id, dir := c.meta.ID, s.monitorOf(c.meta.ID)
	h := s.handlerOf(c.meta.Handler)
	if h.Runtime == nil {
		return monitor.Started{}, errdefs.FailedPrecondition(fmt.Sprintf("runtime handler %q is not available", c.meta.Handler))
	}
	var started monitor.Started
	var err error
	if c.pending != nil {
		started.MonitorPID = c.pending.PID
		err = c.pending.Ready(ctx)
	}
	if err == nil {
		started.PID, err = monitor.Start(ctx, dir, id)
	}
	var ce *monitor.CreateError
	switch {
	case err == nil:
		return started, nil
	case errdefs.IsFailedPrecondition(err) && !errors.As(err, &ce):
		// No waiting monitor (gone with a reboot, or killed): a fresh one runs it.
		c.ownMonitor = true
		started, err = monitor.Launch(ctx, s.cfg.MonitorPath, s.monitorConfig(c, h.Runtime, names))
		if err == nil {
			return started, nil
		}
	case c.ownMonitor:
		monitor.Kill(started.MonitorPID) // cut short, or exited after its failure: reap it
	}
	// A failed run deletes what it made, but a runtime killed half-way leaves the
	// container, a state directory, an empty cgroup.
	h.Runtime.Abandon(ctx, id, s.bundleOf(id))
	if errors.As(err, &ce) {
		return monitor.Started{}, fmt.Errorf("%w: %w", err, errdefs.ErrFailedPrecondition)
	}
	return monitor.Started{}, err
}

// dropMonitor ends the monitor of a container that was never started.
func (s *Service) dropMonitor(ctx context.Context, c *container) error {
	if c.pending != nil {
		monitor.Kill(c.pending.PID) // ours, and it runs nothing yet
		c.pending = nil
		return nil
	}
	return monitor.Abort(ctx, s.monitorOf(c.meta.ID), 0)
}
