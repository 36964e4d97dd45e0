package sandbox

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// TestCreateContainerRollback fails CreateContainer at each step that can fail and
// checks that everything made before is undone (image lease, monitor, root filesystem
// mount, directories, record, name) and that the error keeps its class.
func TestCreateContainerRollback(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(*fakeEnv, *runtimeapi.ContainerConfig)
		wantClass error // nil: unclassified (Internal at the CRI)
	}{
		{name: "image not leased", setup: func(e *fakeEnv, _ *runtimeapi.ContainerConfig) {
			e.images.set(func(f *fakeImages) { f.fail = errdefs.NotFound("image busybox") })
		}, wantClass: errdefs.ErrNotFound},
		{name: "image config unreadable, lease released", setup: func(e *fakeEnv, _ *runtimeapi.ContainerConfig) {
			e.images.set(func(f *fakeImages) { f.badConfig = true })
		}},
		{name: "monitor does not start, directory removed", setup: func(e *fakeEnv, _ *runtimeapi.ContainerConfig) {
			e.s.cfg.MonitorPath = "/nonexistent/berth-monitor"
		}},
		{name: "rootfs not mounted, monitor killed", setup: func(e *fakeEnv, _ *runtimeapi.ContainerConfig) {
			e.images.set(func(f *fakeImages) { f.layers = 1000 })
		}, wantClass: errdefs.ErrFailedPrecondition},
		{name: "spec refused, rootfs unmounted", setup: func(_ *fakeEnv, c *runtimeapi.ContainerConfig) {
			c.Mounts = []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: "relative/path"}}
		}, wantClass: errdefs.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newFakeEnv(t)
			podID, err := e.s.RunPod(context.Background(), basePodConfig(), "")
			if err != nil {
				t.Fatal(err)
			}
			good := baseContainerConfig()
			cfg := baseContainerConfig()
			tt.setup(e, cfg)
			_, err = e.s.CreateContainer(context.Background(), podID, cfg)
			if err == nil {
				t.Fatal("CreateContainer succeeded")
			}
			t.Logf("CreateContainer: %v", err)
			if tt.wantClass != nil && !errors.Is(err, tt.wantClass) {
				t.Errorf("CreateContainer = %v; want it to match %v", err, tt.wantClass)
			}
			e.checkNoContainerLeft(t)

			// The name is free again: a create without the fault succeeds.
			e.images.set(func(f *fakeImages) { f.fail, f.badConfig, f.layers = nil, false, 0 })
			e.s.cfg.MonitorPath = e.monitor
			id, err := e.s.CreateContainer(context.Background(), podID, good)
			if err != nil {
				t.Fatalf("CreateContainer after the failure: %v", err)
			}
			if err := e.s.RemoveContainer(context.Background(), id); err != nil {
				t.Fatal(err)
			}
			e.checkNoContainerLeft(t)
			if err := e.s.RemovePod(context.Background(), podID); err != nil {
				t.Fatal(err)
			}
			e.checkNothingLeft(t)
		})
	}
}

func baseContainerConfig() *runtimeapi.ContainerConfig {
	return &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "c"},
		Image:    &runtimeapi.ImageSpec{Image: "busybox"},
		Linux:    &runtimeapi.LinuxContainerConfig{},
	}
}

// checkNoContainerLeft fails on anything of a container that is left: a lease, a
// mount, a state or writable-layer directory, a record, a listed container.
func (e *fakeEnv) checkNoContainerLeft(t *testing.T) {
	t.Helper()
	e.s.reaper.work() // what a removal left to the reaper
	if got := e.images.Holders(); len(got) != 0 {
		t.Errorf("image leases left: %v", got)
	}
	for _, m := range mountsBelow(t, e.dir) {
		if !isPodMount(e, m) {
			t.Errorf("mount left: %s", m)
		}
	}
	for what, dir := range map[string]string{
		"state":          e.s.cfg.ContainerStateDir,
		"writable layer": e.s.cfg.ContainerRWDir,
		"record":         e.s.ctrStore.Dir(),
		"trashed":        e.s.rwTrash.Dir(),
		"trashed state":  e.s.stateTrash.Dir(),
		"trashed record": e.s.ctrStore.Trash().Dir(),
	} {
		if got := entries(dir); len(got) != 0 {
			t.Errorf("container %s directories left: %v", what, got)
		}
	}
	if got := e.s.ListContainers(nil); len(got) != 0 {
		t.Errorf("containers listed: %v", got)
	}
	// A SIGKILLed monitor that is not the test's child (ECHILD: Kill cannot wait for
	// it) may take a moment to die on a loaded machine.
	deadline := time.Now().Add(5 * time.Second)
	for processesRunning(e.monitor) != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := processesRunning(e.monitor); n != 0 {
		t.Errorf("%d monitors left running", n)
	}
}

// fakeMonitor writes a monitor that only waits, as a real one does until StartContainer.
func fakeMonitor(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "berth-monitor")
	if err := os.WriteFile(path, []byte("#!/bin/sh\nsleep 3600\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// processesRunning counts the live processes whose command line names path.
func processesRunning(path string) int { return len(pidsRunning(path)) }

// pidsRunning lists the live processes whose command line names path.
func pidsRunning(path string) []int {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var out []int
	for _, d := range dirs {
		cmdline, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil || !strings.Contains(string(cmdline), path) {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(d)); err == nil && alive(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// killMonitors ends what a failed test left of the fake monitors at path: each is the
// leader of its own session, with its sleep.
func killMonitors(path string) {
	for _, pid := range pidsRunning(path) {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
}

// isPodMount reports whether mount point m belongs to a pod (its namespaces and shm),
// not to a container.
func isPodMount(e *fakeEnv, m string) bool {
	return strings.HasPrefix(m, e.s.cfg.StateDir+"/")
}
