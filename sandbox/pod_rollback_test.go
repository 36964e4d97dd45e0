package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// TestRunPodRollback fails RunPodSandbox at each step that can fail and checks that
// everything made before is undone (runtime container, network attachment, cgroup,
// mounts, directory, record, name) and that the error keeps its class.
func TestRunPodRollback(t *testing.T) {
	errNet := fmt.Errorf("cni: plugin bridge failed: %w", errdefs.ErrUnavailable)
	errRun := errdefs.FailedPrecondition("runc: exec format error")
	tests := []struct {
		name      string
		cgroup    bool
		failSetup error
		failRun   error
		wantClass error
	}{
		{name: "network fails, pause undone", failSetup: errNet, wantClass: errdefs.ErrUnavailable},
		{name: "pause fails, network undone", failRun: errRun, wantClass: errdefs.ErrFailedPrecondition},
		{name: "both fail", failSetup: errNet, failRun: errRun, wantClass: errdefs.ErrUnavailable},
		{name: "network fails, cgroup undone", cgroup: true, failSetup: errNet, wantClass: errdefs.ErrUnavailable},
		{name: "pause fails, cgroup undone", cgroup: true, failRun: errRun, wantClass: errdefs.ErrFailedPrecondition},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newFakeEnv(t)
			e.net.setFail("setup", tt.failSetup)
			e.rt.setFail("run", tt.failRun)
			cfg := basePodConfig()
			if tt.cgroup {
				cfg.Linux.CgroupParent = "/kubepods/burstable/pod1"
			}
			_, err := e.s.RunPod(context.Background(), cfg, "")
			if err == nil {
				t.Fatal("RunPod succeeded")
			}
			if !errors.Is(err, tt.wantClass) {
				t.Errorf("RunPod = %v; want it to match %v", err, tt.wantClass)
			}
			e.checkNothingLeft(t)

			// The name is free again: the same request succeeds once the fault is gone.
			e.net.setFail("setup", nil)
			e.rt.setFail("run", nil)
			id, err := e.s.RunPod(context.Background(), cfg, "")
			if err != nil {
				t.Fatalf("RunPod after the failure: %v", err)
			}
			if err := e.s.RemovePod(context.Background(), id); err != nil {
				t.Fatal(err)
			}
			e.checkNothingLeft(t)
		})
	}
}

// TestRunPodUndoFails: when an undo step fails too, the pod stays recorded and listed
// NOTREADY with what is left, and RemovePod finishes the job once it can.
func TestRunPodUndoFails(t *testing.T) {
	e := newFakeEnv(t)
	e.rt.setFail("run", errdefs.FailedPrecondition("runc: no pause"))
	e.net.setFail("teardown", errors.New("cni: DEL failed"))
	cfg := basePodConfig()
	if _, err := e.s.RunPod(context.Background(), cfg, ""); !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("RunPod = %v; want FailedPrecondition", err)
	}
	pods := e.s.ListPods(nil)
	if len(pods) != 1 || pods[0].GetState() != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
		t.Fatalf("ListPods = %v; want the pod, NOTREADY", pods)
	}
	if got := e.net.pods(); len(got) != 1 {
		t.Fatalf("attached %v; want the pod still attached", got)
	}
	if len(entries(e.s.store.Dir())) != 1 {
		t.Fatalf("records %v; want the pod's", entries(e.s.store.Dir()))
	}
	e.net.setFail("teardown", nil)
	if err := e.s.RemovePod(context.Background(), pods[0].GetId()); err != nil {
		t.Fatalf("RemovePod: %v", err)
	}
	e.checkNothingLeft(t)
}

// TestRunPodStopRemove: the fakes' bookkeeping on the path that succeeds.
func TestRunPodStopRemove(t *testing.T) {
	e := newFakeEnv(t)
	cfg := basePodConfig()
	cfg.Linux.CgroupParent = "/kubepods/burstable/pod2"
	id, err := e.s.RunPod(context.Background(), cfg, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := e.rt.containers(); len(got) != 1 || got[0] != id {
		t.Errorf("runtime containers %v; want the pause %s", got, id)
	}
	if got := e.net.pods(); len(got) != 1 || got[0] != id {
		t.Errorf("attached %v; want %s", got, id)
	}
	if _, err := os.Stat(filepath.Join(e.cgroot, "kubepods/burstable/pod2")); err != nil {
		t.Errorf("pod cgroup: %v", err)
	}
	if err := e.s.StopPod(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if got := e.rt.containers(); len(got) != 0 {
		t.Errorf("runtime containers after StopPod %v", got)
	}
	if got := e.net.pods(); len(got) != 0 {
		t.Errorf("attached after StopPod %v", got)
	}
	if err := e.s.RemovePod(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	e.checkNothingLeft(t)
}

// checkNothingLeft fails on anything of a pod that is left: a runtime container, a
// network attachment, a pod cgroup, a mount, a pod directory, a record, a listed pod.
func (e *fakeEnv) checkNothingLeft(t *testing.T) {
	t.Helper()
	if got := e.rt.containers(); len(got) != 0 {
		t.Errorf("runtime containers left: %v", got)
	}
	if got := e.net.pods(); len(got) != 0 {
		t.Errorf("network attachments left: %v", got)
	}
	for _, pod := range []string{"pod1", "pod2"} {
		if _, err := os.Stat(filepath.Join(e.cgroot, "kubepods/burstable", pod)); !os.IsNotExist(err) {
			t.Errorf("pod cgroup %s left (%v)", pod, err)
		}
	}
	if got := mountsBelow(t, e.dir); len(got) != 0 {
		t.Errorf("mounts left: %v", got)
	}
	if got := entries(e.s.cfg.StateDir); len(got) != 0 {
		t.Errorf("pod directories left: %v", got)
	}
	if got := entries(e.s.store.Dir()); len(got) != 0 {
		t.Errorf("records left: %v", got)
	}
	if got := e.s.ListPods(nil); len(got) != 0 {
		t.Errorf("pods listed: %v", got)
	}
}
