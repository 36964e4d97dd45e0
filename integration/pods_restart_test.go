package integration

import (
	"syscall"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/nspin"
)

// TestPodsSurviveRestart stops berthd (SIGTERM, and SIGKILL as a crash would) with pods
// in every state, and checks that the next berthd reports them as they were: READY with
// the same addresses and the same pause, NOTREADY when stopped, and NOTREADY when their
// pause died while berthd was down. Then everything is released as usual.
func TestPodsSurviveRestart(t *testing.T) {
	becomeSubreaper(t)
	for _, how := range []string{"SIGTERM", "SIGKILL"} {
		t.Run(how, func(t *testing.T) {
			n := newTestNetwork(t)
			d := startPodDaemon(t, n, "")
			sharedCfg := podConfig(t, "shared")
			shared := d.runPod(t, sharedCfg)
			perContainer := d.runPod(t, podConfig(t, "per-container",
				withNamespaces(runtimeapi.NamespaceMode_POD, runtimeapi.NamespaceMode_CONTAINER, runtimeapi.NamespaceMode_POD)))
			stopped := d.runPod(t, podConfig(t, "stopped"))
			d.stopPod(t, stopped)
			victim := d.runPod(t, podConfig(t, "victim"))
			ids := []string{shared, perContainer, stopped, victim}
			before := map[string]*runtimeapi.PodSandboxStatus{}
			infos := map[string]podInfo{}
			var pids []int
			for _, id := range ids {
				before[id], infos[id] = d.podStatus(t, id)
				if infos[id].Pid != 0 {
					pids = append(pids, infos[id].Pid)
				}
			}
			if how == "SIGTERM" {
				d.stop()
			} else {
				d.kill()
			}
			if !alive(infos[shared].Pid) {
				t.Fatal("berthd's end killed a pause")
			}
			// A pause dies while berthd is down.
			if err := syscall.Kill(infos[victim].Pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			reapOrphans([]int{infos[victim].Pid})

			d2 := startDaemon(t, daemonOptions{Dir: d.dir, Config: n.toml()})
			d2.cleanupPods(t, ids...)
			want := map[string]runtimeapi.PodSandboxState{
				shared: runtimeapi.PodSandboxState_SANDBOX_READY, perContainer: runtimeapi.PodSandboxState_SANDBOX_READY,
				stopped: runtimeapi.PodSandboxState_SANDBOX_NOTREADY, victim: runtimeapi.PodSandboxState_SANDBOX_NOTREADY,
			}
			for _, id := range ids {
				st, info := d2.podStatus(t, id)
				if st.State != want[id] {
					t.Errorf("%s: state %v, want %v", st.Metadata.Name, st.State, want[id])
				}
				if st.GetNetwork().GetIp() != before[id].GetNetwork().GetIp() || st.CreatedAt != before[id].CreatedAt {
					t.Errorf("%s: network %v created %d, was %v %d", st.Metadata.Name, st.Network, st.CreatedAt, before[id].Network, before[id].CreatedAt)
				}
				if id == shared && (info.Pid != infos[id].Pid || !alive(info.Pid)) {
					t.Errorf("pause pid %d after restart, was %d", info.Pid, infos[id].Pid)
				}
				if want[id] == runtimeapi.PodSandboxState_SANDBOX_READY {
					if ok, _ := nspin.IsPinned(info.NetNS); !ok {
						t.Errorf("%s: network namespace gone", st.Metadata.Name)
					}
				}
			}
			if got := d2.listPods(t, nil); len(got) != len(ids) {
				t.Errorf("%d pods listed after restart, want %d", len(got), len(ids))
			}
			// The retry of a request made before the restart still gets its pod.
			if id := d2.runPod(t, sharedCfg); id != shared {
				t.Errorf("retry after restart got %s, want %s", id, shared)
			}
			for _, id := range ids {
				d2.stopPod(t, id)
				d2.removePod(t, id)
			}
			reapOrphans(pids)
			waitNoLeftovers(t, d2, n, pids, ids)
		})
	}
}
