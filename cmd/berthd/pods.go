package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/config"
	"github.com/berth-runtime/berth/internal/oomscore"
	"github.com/berth-runtime/berth/network"
	"github.com/berth-runtime/berth/sandbox"
	"github.com/berth-runtime/berth/sandbox/cgroups"
	"github.com/berth-runtime/berth/sandbox/pause"
	"github.com/berth-runtime/berth/sandbox/runtime"
)

// newPodService wires the pod sandbox service: the CNI network (libcni's cache under the
// state directory), cgroups per cgroup_driver, berth's pause
// rootfs, the oom_score_adj restriction, and recovery of the pods an earlier berthd
// left. berthd becomes a child subreaper first, so that the pause processes the OCI
// runtime leaves behind are berthd's children, reaped when their pods stop, rather
// than zombies of a node init that may not reap (sandbox/infra); it then also reaps the
// runtime's init stages handed to it (runtime.WatchStages).
func newPodService(ctx context.Context, cfg config.Config, log *slog.Logger, runtimes map[string]sandbox.Handler, images sandbox.Images, hooks sandbox.NRI) (*sandbox.Service, *network.Manager, error) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return nil, nil, fmt.Errorf("become a child subreaper: %w", err)
	}
	go runtime.WatchStages(ctx, log)
	netm, err := network.New(network.Config{
		ConfDir: cfg.Network.ConfDir, BinDirs: cfg.Network.BinDirs, CacheDir: filepath.Join(cfg.State, "cni"),
		Default: network.DefaultNetwork{Enabled: cfg.Network.DefaultNetwork},
	}, log)
	if err != nil {
		return nil, nil, fmt.Errorf("network: %w", err)
	}
	cgm, err := cgroups.NewManager(cgroups.Options{Driver: cgroups.Driver(cfg.CgroupDriver)})
	if err != nil {
		return nil, nil, err
	}
	if !cgm.HugetlbAvailable() {
		log.Info("the hugetlb cgroup controller is not on the hierarchy the OCI runtime uses; "+
			"hugepage limits in container resources are dropped", "cgroups", cgm.Mode().String())
	}
	// Under root, not state: /run is often mounted noexec, and pause must be executable.
	rootfs, err := pause.Rootfs(filepath.Join(cfg.Root, "pause"))
	if err != nil {
		return nil, nil, err
	}
	monitorPath, err := findMonitor(cfg.MonitorPath)
	if err != nil {
		return nil, nil, err
	}
	pods, err := sandbox.New(ctx, sandbox.Config{
		RecordDir:      filepath.Join(cfg.Root, "pods"),
		StateDir:       filepath.Join(cfg.State, "pods"),
		Handlers:       runtimes,
		DefaultHandler: cfg.DefaultRuntime,
		Network:        netm,
		Cgroups:        cgm,
		PauseRootfs:    rootfs,
		PauseArgs:      pause.Args(),
		ShmSize:        cfg.Pod.ShmSize,
		CreateTimeout:  cfg.Pod.CreateTimeout.Duration,
		OOMScoreAdj:    oomClamp(cfg.Pod.RestrictOOMScoreAdj, log),
		Log:            log.With("component", "sandbox"),

		Images:             images,
		MonitorPath:        monitorPath,
		ContainerRecordDir: filepath.Join(cfg.Root, "containers"),
		ContainerStateDir:  filepath.Join(cfg.State, "containers"),
		ContainerRWDir:     filepath.Join(cfg.Root, "rw"),
		NRI:                hooks,
		CDISpecDirs:        cfg.CDI.SpecDirs,
		DiskUsageInterval:  cfg.Pod.DiskUsageInterval.Duration,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("pods: %w", err)
	}
	return pods, netm, nil
}

// oomClamp returns the oom_score_adj restriction for setting mode, and logs once when it
// changes anything.
func oomClamp(mode string, log *slog.Logger) func(int) int {
	switch mode {
	case "never":
		return nil
	case "always":
		data, err := os.ReadFile("/proc/self/oom_score_adj")
		own, perr := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || perr != nil {
			log.Warn("cannot read berthd's own oom_score_adj; not restricting", "error", errors.Join(err, perr))
			return nil
		}
		log.Info("oom_score_adj below berthd's own is raised to it (restrict_oom_score_adj = always)", "own", own)
		return func(v int) int { return max(v, own) }
	}
	if reason := oomscore.RestrictionReason(); reason != "" {
		log.Warn("oom_score_adj restricted", "reason", reason)
		return oomscore.Clamp
	}
	return nil
}
