package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/nspin"
	"github.com/berth-runtime/berth/network/cnitest"
)

// TestStopWhenNetnsGone: StopPodSandbox still releases the pod's address when its
// network namespace was removed behind berth's back, and when libcni's record of the ADD
// is gone too.
func TestStopWhenNetnsGone(t *testing.T) {
	for _, cacheGone := range []bool{false, true} {
		name := "netns gone"
		if cacheGone {
			name += ", CNI cache gone"
		}
		t.Run(name, func(t *testing.T) {
			n := newTestNetwork(t)
			d := startPodDaemon(t, n, "")
			id := d.runPod(t, podConfig(t, "orphan", withNamespaces(runtimeapi.NamespaceMode_POD, runtimeapi.NamespaceMode_CONTAINER, runtimeapi.NamespaceMode_POD)))
			d.cleanupPods(t, id)
			_, info := d.podStatus(t, id)
			if err := nspin.Unpin(info.NetNS); err != nil {
				t.Fatal(err)
			}
			if cacheGone {
				if err := os.RemoveAll(filepath.Join(d.dir, "state", "cni")); err != nil {
					t.Fatal(err)
				}
			}
			d.stopPod(t, id)
			if ips := cnitest.Allocated(t, n.dataDir, n.name); len(ips) != 0 {
				t.Errorf("address not released: %v", ips)
			}
			d.removePod(t, id)
			waitNoLeftovers(t, d, n, nil, []string{id})
		})
	}
}

// TestFailedUndoKeepsThePod: when the undo of a failed create fails too (the CNI plugin
// fails ADD and DEL), the pod stays recorded and listed NOTREADY with what it still
// holds; once the plugin works again, RemovePodSandbox releases everything.
func TestFailedUndoKeepsThePod(t *testing.T) {
	n := newTestNetwork(t)
	n.failPlugin(t, "bridge", "fail-all")
	d := startPodDaemon(t, n, "")
	ctx := ctxTimeout(t, time.Minute)
	_, err := d.runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: podConfig(t, "stuck")})
	if err == nil {
		t.Fatal("RunPodSandbox succeeded with a failing plugin")
	}
	pods := d.listPods(t, nil)
	if len(pods) != 1 || pods[0].State != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
		t.Fatalf("listed %v, want the half-undone pod NOTREADY", pods)
	}
	id := pods[0].Id
	d.cleanupPods(t, id)
	_, info := d.podStatus(t, id)
	// What the undo released is no longer recorded; the namespace stays for the DEL.
	if info.State != "notready" || info.Pid != 0 || info.Shm != "" || info.NetNS == "" {
		t.Errorf("verbose info %+v", info)
	}
	n.restorePlugin(t, "bridge")
	d.removePod(t, id)
	waitNoLeftovers(t, d, n, nil, []string{id})
}

// TestRecoveryOfBrokenRecords: a pod whose status record is unreadable comes back
// NOTREADY and Remove releases everything it holds (found where berth puts things); a
// pod whose metadata is unreadable is skipped and logged, and berthd starts anyway.
func TestRecoveryOfBrokenRecords(t *testing.T) {
	becomeSubreaper(t)
	n := newTestNetwork(t)
	d := startPodDaemon(t, n, "")
	broken := d.runPod(t, podConfig(t, "broken-status"))
	_, info := d.podStatus(t, broken)
	skipped := d.runPod(t, podConfig(t, "broken-metadata"))
	d.stopPod(t, skipped)
	d.stop()

	records := filepath.Join(d.root(), "pods")
	for file, id := range map[string]string{"status.json": broken, "metadata.json": skipped} {
		if err := os.WriteFile(filepath.Join(records, id, file), []byte("{not json"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { // berth leaves the skipped pod's record and files alone
		_ = os.RemoveAll(filepath.Join(records, skipped))
		_ = os.RemoveAll(filepath.Join(d.dir, "state", "pods", skipped))
	})
	d2 := startDaemon(t, daemonOptions{Dir: d.dir, Config: n.toml()})
	d2.cleanupPods(t, broken)
	pods := d2.listPods(t, nil)
	if len(pods) != 1 || pods[0].Id != broken || pods[0].State != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
		t.Fatalf("listed %v, want only the pod with the broken status, NOTREADY", pods)
	}
	if !strings.Contains(d2.log.String(), "skipping an unreadable pod record") {
		t.Error("the skipped record was not logged")
	}
	d2.stopPod(t, broken)
	d2.removePod(t, broken)
	reapOrphans([]int{info.Pid})
	if ips := cnitest.Allocated(t, n.dataDir, n.name); len(ips) != 0 {
		t.Errorf("addresses left: %v", ips)
	}
	_ = os.RemoveAll(filepath.Join(records, skipped))
	_ = os.RemoveAll(filepath.Join(d.dir, "state", "pods", skipped))
	waitNoLeftovers(t, d2, n, []int{info.Pid}, []string{broken, skipped})
}
