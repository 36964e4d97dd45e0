package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/berth-runtime/berth/network/cnitest"
)

// cniPluginDir holds Debian's CNI plugins, which the pod tests run for real.
const cniPluginDir = "/usr/lib/cni"

// testNetwork is a CNI network of the test's own for berthd: a bridge bt<hex>, a /24 in
// 10.198.0.0/16, no masquerading, host-local records in a test directory, portmap and
// loopback. The bridge is removed when the test ends, whether it passed or not, and
// net.ipv4.ip_forward, which the bridge plugin turns on, is put back. Tests that give
// pods host ports call cnitest.CleanupPortmapChains too.
type testNetwork struct {
	name, bridge, subnet string
	subnet6              string // "" unless dual-stack
	dataDir, confDir     string
	// binDir comes before cniPluginDir in berthd's plugin path: failure-injecting
	// wrappers go there (failPlugin).
	binDir string
}

func newTestNetwork(t *testing.T) *testNetwork {
	t.Helper()
	return newTestNetworkWith(t, false)
}

// newDualStackNetwork is newTestNetwork with an IPv6 range too (a random /64 of
// fd42::/16): pods get an address of each family.
func newDualStackNetwork(t *testing.T) *testNetwork {
	t.Helper()
	return newTestNetworkWith(t, true)
}

func newTestNetworkWith(t *testing.T, dualStack bool) *testNetwork {
	t.Helper()
	requireCNI(t)
	id := cnitest.RandomHex(t, 4)
	n := &testNetwork{
		name:    "berth-it-" + id,
		bridge:  "bt" + id,
		subnet:  cnitest.FreeSubnet(t, "10.198"),
		dataDir: t.TempDir(),
		confDir: t.TempDir(),
		binDir:  t.TempDir(),
	}
	ranges := [][]map[string]string{{{"subnet": n.subnet}}}
	if dualStack {
		n.subnet6 = fmt.Sprintf("fd42:%s:%s::/64", cnitest.RandomHex(t, 2), cnitest.RandomHex(t, 2))
		ranges = append(ranges, []map[string]string{{"subnet": n.subnet6}})
	}
	const fwd = "/proc/sys/net/ipv4/ip_forward"
	before, fwdErr := os.ReadFile(fwd)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "link", "del", n.bridge).CombinedOutput(); err != nil && cnitest.LinkExists(n.bridge) {
			t.Errorf("delete bridge %s: %v: %s", n.bridge, err, out)
		}
		if now, _ := os.ReadFile(fwd); fwdErr == nil && string(now) != string(before) {
			_ = os.WriteFile(fwd, before, 0o644)
		}
	})
	// snat (portmap's default): connections to 127.0.0.1:<hostPort> reach the pod.
	conf := cnitest.BridgeConflist(n.name, n.bridge, n.dataDir, ranges, true, map[string]any{"type": "loopback"})
	if err := os.WriteFile(filepath.Join(n.confDir, "10-test.conflist"), conf, 0o644); err != nil {
		t.Fatal(err)
	}
	return n
}

// toml is the berthd configuration that selects the network.
func (n *testNetwork) toml() string {
	return fmt.Sprintf("[network]\nconf_dir = %q\nbin_dirs = [%q, %q]\n", n.confDir, n.binDir, cniPluginDir)
}

// failPlugin makes berthd run a wrapper for plugin that, on ADD, fails ("fail"), hangs
// ("hang") or takes two seconds before it runs the real plugin ("slow"); "fail-all" fails
// ADD and DEL. Every other command goes to the real plugin. A hanging wrapper writes its pid to hangPIDFile, so
// that a test that kills berthd can end it.
func (n *testNetwork) failPlugin(t *testing.T, plugin, mode string) {
	t.Helper()
	var action string
	commands := "ADD"
	switch mode {
	case "fail", "fail-all":
		action = `echo '{"cniVersion":"1.0.0","code":999,"msg":"injected failure"}'; exit 1`
		if mode == "fail-all" {
			commands = "ADD|DEL"
		}
	case "hang":
		action = fmt.Sprintf("echo $$ > %q; exec sleep 3600", n.hangPIDFile())
	case "slow":
		action = "sleep 2"
	default:
		t.Fatalf("failPlugin: unknown mode %q", mode)
	}
	script := fmt.Sprintf("#!/bin/sh\ncase \"$CNI_COMMAND\" in %s) %s;; esac\nexec %s \"$@\"\n",
		commands, action, filepath.Join(cniPluginDir, plugin))
	if err := os.WriteFile(filepath.Join(n.binDir, plugin), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}

// restorePlugin removes the wrapper failPlugin made.
func (n *testNetwork) restorePlugin(t *testing.T, plugin string) {
	t.Helper()
	if err := os.Remove(filepath.Join(n.binDir, plugin)); err != nil {
		t.Fatal(err)
	}
}

func (n *testNetwork) hangPIDFile() string { return filepath.Join(n.binDir, "hang.pid") }

func requireCNI(t *testing.T) {
	t.Helper()
	for _, p := range []string{"bridge", "host-local", "portmap", "loopback"} {
		if _, err := os.Stat(filepath.Join(cniPluginDir, p)); err != nil {
			t.Skipf("CNI plugin %s not installed in %s", p, cniPluginDir)
		}
	}
	if _, err := exec.LookPath("iptables-save"); err != nil {
		t.Skip("iptables not installed")
	}
}
