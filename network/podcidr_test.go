package network

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/network/cnitest"
)

func TestParsePodCIDR(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    [][]IPRange
		invalid bool
	}{
		{in: "", want: nil},
		{in: "10.244.1.0/24", want: [][]IPRange{{{Subnet: "10.244.1.0/24"}}}},
		{in: "10.244.1.7/24", want: [][]IPRange{{{Subnet: "10.244.1.0/24"}}}},
		{in: "10.244.1.0/24, fd00:10:244:1::/64", want: [][]IPRange{{{Subnet: "10.244.1.0/24"}}, {{Subnet: "fd00:10:244:1::/64"}}}},
		{in: "10.244.1.0", invalid: true},
		{in: "10.244.1.0/24,", invalid: true},
		{in: "pods", invalid: true},
	} {
		got, err := parsePodCIDR(tc.in)
		if tc.invalid {
			if !errdefs.IsInvalidArgument(err) {
				t.Errorf("parsePodCIDR(%q) = %v, %v; want InvalidArgument", tc.in, got, err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parsePodCIDR(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

// TestPodCIDRKept: a restarted Manager on the same cache directory still has the CIDR;
// "" forgets it.
func TestPodCIDRKept(t *testing.T) {
	cfg := Config{ConfDir: t.TempDir(), BinDirs: []string{t.TempDir()}, CacheDir: t.TempDir()}
	m, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.SetPodCIDR("nonsense"); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("SetPodCIDR(nonsense) = %v, want InvalidArgument", err)
	}
	if err := m.SetPodCIDR("10.244.3.0/24"); err != nil {
		t.Fatal(err)
	}
	want := [][]IPRange{{{Subnet: "10.244.3.0/24"}}}
	again, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := again.podCIDRRanges(); !reflect.DeepEqual(got, want) {
		t.Errorf("after a restart: %v, want %v", got, want)
	}
	if err := again.SetPodCIDR(""); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(cfg.CacheDir, podCIDRFile)); !os.IsNotExist(err) {
		t.Errorf("the kept CIDR is still there: %v", err)
	}
	if got := again.podCIDRRanges(); got != nil {
		t.Errorf("after forgetting: %v", got)
	}
}

// TestPodCIDRReachesIPAM: with a network whose bridge declares the ipRanges capability
// (and host-local names no range of its own), a pod gets its address from kubelet's pod
// CIDR.
func TestPodCIDRReachesIPAM(t *testing.T) {
	n := newTestNet(t, netOpts{})
	podSubnet := cnitest.FreeSubnet(t, "10.198")
	var list map[string]any
	if err := json.Unmarshal(cnitest.BridgeConflist(n.name, n.bridge, n.dataDir, [][]map[string]string{{{"subnet": n.subnet}}}, false, map[string]any{"type": "loopback"}), &list); err != nil {
		t.Fatal(err)
	}
	bridge := list["plugins"].([]any)[0].(map[string]any)
	bridge["capabilities"] = map[string]bool{"ipRanges": true}
	// host-local adds the runtime's ranges to its own: a network that takes the pod CIDR
	// names none itself.
	delete(bridge["ipam"].(map[string]any), "ranges")
	data, err := json.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(n.confDir, "10-test.conflist"), string(data), 0o644)
	n.m.Reload()
	if err := n.m.SetPodCIDR(podSubnet); err != nil {
		t.Fatal(err)
	}
	res, err := n.m.Setup(testCtx(t), n.pod(t, "cidr"))
	if err != nil {
		t.Fatal(err)
	}
	_, want, _ := net.ParseCIDR(podSubnet)
	if len(res.IPs) == 0 || !want.Contains(res.IPs[0]) {
		t.Errorf("pod addresses %v, want one in the pod CIDR %s", res.IPs, podSubnet)
	}
}
