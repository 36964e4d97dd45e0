package integration

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// networkCondition returns berthd's NetworkReady condition.
func (d *daemon) networkCondition(t *testing.T) *runtimeapi.RuntimeCondition {
	t.Helper()
	resp, err := d.runtime.Status(ctxTimeout(t, 30*time.Second), &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	for _, c := range resp.GetStatus().GetConditions() {
		if c.Type == runtimeapi.NetworkReady {
			return c
		}
	}
	t.Fatalf("Status has no %s condition: %v", runtimeapi.NetworkReady, resp)
	return nil
}

// TestNetworkWrittenLater is a node joining a cluster: berthd starts with an empty CNI
// directory and the embedded default network off (the default). It reports NetworkReady
// false with the reason and refuses pod networks; host-network pods still run. When the
// cluster's network plugin writes its configuration, the next Status and RunPodSandbox
// use it, without a restart.
func TestNetworkWrittenLater(t *testing.T) {
	n := newTestNetwork(t)
	conf := filepath.Join(n.confDir, "10-test.conflist")
	data, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(conf); err != nil {
		t.Fatal(err)
	}
	d := startPodDaemon(t, n, "")

	c := d.networkCondition(t)
	if c.Status || c.Reason != "NetworkPluginNotReady" || !strings.Contains(c.Message, "no CNI configuration") ||
		!strings.Contains(c.Message, "default_network") {
		t.Fatalf("NetworkReady with an empty CNI directory = %v, want false with the reason", c)
	}
	_, err = d.runtime.RunPodSandbox(ctxTimeout(t, time.Minute), &runtimeapi.RunPodSandboxRequest{Config: podConfig(t, "early")})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("RunPodSandbox without a network = %v, want FailedPrecondition", err)
	}
	if pods := d.listPods(t, nil); len(pods) != 0 {
		t.Fatalf("a refused pod is listed: %v", pods)
	}
	host := d.runPod(t, podConfig(t, "host", withNamespaces(runtimeapi.NamespaceMode_NODE, runtimeapi.NamespaceMode_CONTAINER, runtimeapi.NamespaceMode_POD)))
	d.cleanupPods(t, host)

	// The cluster's plugin writes its configuration the way installers do: a temporary
	// file renamed into place.
	tmp := filepath.Join(n.confDir, ".10-test.conflist.tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, conf); err != nil {
		t.Fatal(err)
	}
	if c := d.networkCondition(t); !c.Status {
		t.Fatalf("NetworkReady after the configuration was written = %v, want true", c)
	}
	id := d.runPod(t, podConfig(t, "later"))
	d.cleanupPods(t, id)
	st, _ := d.podStatus(t, id)
	_, subnet, _ := net.ParseCIDR(n.subnet)
	if ip := net.ParseIP(st.GetNetwork().GetIp()); ip == nil || !subnet.Contains(ip) {
		t.Fatalf("pod address %q, want one in the written network's %s", st.GetNetwork().GetIp(), n.subnet)
	}
	if !strings.Contains(d.log.String(), "CNI network loaded") {
		t.Error("berthd did not log the network it picked up")
	}
}
