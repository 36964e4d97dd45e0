package integration

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/network/cnitest"
	"github.com/berth-runtime/berth/sandbox/runtime/runtimetest"
)

// TestRunPodFailureLeavesNothing makes one step of RunPodSandbox fail or hang, with no
// change to berth: wrapper executables stand in for a CNI plugin or for runc. After
// each failure nothing is left: no mount, no address, no veth, no record, no runtime
// state, no pause, no cgroup.
func TestRunPodFailureLeavesNothing(t *testing.T) {
	tests := []struct {
		name   string
		plugin string // CNI plugin to break, with mode
		runc   string // runc subcommand to break, with mode
		mode   string
		code   codes.Code
	}{
		{name: "bridge fails on ADD", plugin: "bridge", mode: "fail", code: codes.Internal},
		{name: "bridge hangs on ADD", plugin: "bridge", mode: "hang", code: codes.DeadlineExceeded},
		{name: "portmap fails on ADD", plugin: "portmap", mode: "fail", code: codes.Internal},
		{name: "runc run fails", runc: "run", mode: runtimetest.ModeFail, code: codes.Internal},
		{name: "runc run hangs", runc: "run", mode: runtimetest.ModeHang, code: codes.DeadlineExceeded},
		{name: "runc run fails after starting pause", runc: "run", mode: runtimetest.ModeFailAfter, code: codes.Internal},
		{name: "runc run hangs after starting pause", runc: "run", mode: runtimetest.ModeHangAfter, code: codes.DeadlineExceeded},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := newTestNetwork(t)
			cnitest.CleanupPortmapChains(t, true) // the pod has a host port
			extra := "[pod]\ncreate_timeout = \"3s\"\n"
			if tc.plugin != "" {
				n.failPlugin(t, tc.plugin, tc.mode)
			}
			if tc.runc != "" {
				extra += fmt.Sprintf("[runtimes.runc]\npath = %q\n", runtimetest.FailingRuntime(t, testRunc(t), tc.runc, tc.mode))
			}
			d := startPodDaemon(t, n, extra)
			ctx := ctxTimeout(t, time.Minute)
			cfg := podConfig(t, "doomed", func(c *runtimeapi.PodSandboxConfig) {
				c.PortMappings = []*runtimeapi.PortMapping{{ContainerPort: 80, HostPort: int32(freeTCPPort(t))}}
			})
			_, err := d.runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
			wantCode(t, "RunPodSandbox", err, tc.code)
			id := failedPodID(t, d)
			if pods := d.listPods(t, nil); len(pods) != 0 {
				t.Errorf("failed pod listed: %v", pods)
			}
			waitNoLeftovers(t, d, n, nil, []string{id})
			if rules := cnitest.IPTablesMentions(t, id); len(rules) != 0 {
				t.Errorf("iptables rules left: %q", rules)
			}
			// The name is free again: the same request succeeds once the fault is gone.
			if tc.plugin != "" {
				n.restorePlugin(t, tc.plugin)
				id := d.runPod(t, cfg)
				d.stopPod(t, id)
				d.removePod(t, id)
			}
		})
	}
}

var undoneIDRE = regexp.MustCompile(`create failed; undoing it.* id=([0-9a-f]{64})`)

// failedPodID finds the id of the pod whose create failed in berthd's log.
func failedPodID(t *testing.T, d *daemon) string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := undoneIDRE.FindStringSubmatch(d.log.String()); m != nil {
			return m[1]
		}
	}
	t.Fatal("berthd did not log the failed create")
	return ""
}

// TestRunPodRetryAfterDeadline: kubelet's RunPodSandbox times out while the create goes
// on (a slow CNI ADD); its retries, however many and however concurrent, get the id of
// that one pod, and once it exists, at once. A different request for the same pod name
// and attempt is refused.
func TestRunPodRetryAfterDeadline(t *testing.T) {
	n := newTestNetwork(t)
	n.failPlugin(t, "bridge", "slow")
	d := startPodDaemon(t, n, "")
	cfg := podConfig(t, "slow")

	short, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err := d.runtime.RunPodSandbox(short, &runtimeapi.RunPodSandboxRequest{Config: cfg})
	wantCode(t, "first call", err, codes.DeadlineExceeded)

	ids := make([]string, 5)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Go(func() { ids[i] = d.runPod(t, cfg) })
	}
	wg.Wait()
	d.cleanupPods(t, ids[0])
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("retries got different pods: %v", ids)
		}
	}
	start := time.Now()
	if id := d.runPod(t, cfg); id != ids[0] || time.Since(start) > time.Second {
		t.Fatalf("retry after the create: %s after %v, want %s at once", id, time.Since(start), ids[0])
	}
	if pods := d.listPods(t, nil); len(pods) != 1 {
		t.Fatalf("%d pods listed, want 1", len(pods))
	}
	ctx := ctxTimeout(t, 30*time.Second)
	other := podConfig(t, "slow")
	other.Metadata = cfg.Metadata
	other.Labels = map[string]string{"changed": "yes"}
	_, err = d.runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: other})
	wantCode(t, "different request, same name", err, codes.AlreadyExists)

	d.stopPod(t, ids[0])
	d.removePod(t, ids[0])
	n.restorePlugin(t, "bridge")
	if id := d.runPod(t, cfg); id == ids[0] { // the name is free again
		t.Fatal("a removed pod's id came back")
	} else {
		d.stopPod(t, id)
		d.removePod(t, id)
	}
	waitNoLeftovers(t, d, n, nil, ids[:1])
}

// TestKillDuringPodCreate: berthd is killed while a CNI ADD hangs; the next berthd finds
// the unfinished create and undoes it.
func TestKillDuringPodCreate(t *testing.T) {
	becomeSubreaper(t)
	n := newTestNetwork(t)
	n.failPlugin(t, "bridge", "hang")
	d := startPodDaemon(t, n, "")
	short, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := d.runtime.RunPodSandbox(short, &runtimeapi.RunPodSandboxRequest{Config: podConfig(t, "cut")})
	wantCode(t, "RunPodSandbox", err, codes.DeadlineExceeded)
	hung := waitPIDFile(t, n.hangPIDFile())
	d.kill()
	_ = syscall.Kill(hung, syscall.SIGKILL) // the plugin berthd ran, orphaned with it
	reapOrphans([]int{hung})

	n.restorePlugin(t, "bridge")
	d2 := startDaemon(t, daemonOptions{Dir: d.dir, Config: n.toml()})
	if pods := d2.listPods(t, nil); len(pods) != 0 {
		t.Errorf("the unfinished pod is listed: %v", pods)
	}
	if !d2.log.Contains("undid a pod create that berthd's stop had cut short") {
		t.Error("recovery did not report undoing the create")
	}
	waitNoLeftovers(t, d2, n, nil, nil)
}

func waitPIDFile(t *testing.T, path string) int {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if data, err := os.ReadFile(path); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
				return pid
			}
		}
	}
	t.Fatalf("no pid in %s", path)
	return 0
}
