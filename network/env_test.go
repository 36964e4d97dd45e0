package network

import (
	"context"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/berth-runtime/berth/internal/nspin"
	"github.com/berth-runtime/berth/network/cnitest"
)

// pluginDir holds Debian's CNI plugins, which the tests run for real.
const pluginDir = "/usr/lib/cni"

// TestMain puts back net.ipv4.ip_forward: the bridge plugin with isGateway turns it on,
// and the tests must leave the host as they found it.
func TestMain(m *testing.M) {
	const fwd = "/proc/sys/net/ipv4/ip_forward"
	before, err := os.ReadFile(fwd)
	code := m.Run()
	if err == nil {
		if now, _ := os.ReadFile(fwd); string(now) != string(before) {
			_ = os.WriteFile(fwd, before, 0o644)
		}
	}
	os.Exit(code)
}

func requireCNI(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs CNI plugins")
	}
	for _, p := range []string{"bridge", "host-local", "portmap", "loopback"} {
		if _, err := os.Stat(filepath.Join(pluginDir, p)); err != nil {
			t.Skipf("CNI plugin %s not installed in %s", p, pluginDir)
		}
	}
	if _, err := exec.LookPath("iptables-save"); err != nil {
		t.Skip("iptables not installed")
	}
}

// netOpts varies the test network.
type netOpts struct {
	snat       bool // portmap masquerades localhost and hairpin traffic (needed for 127.0.0.1)
	noLoopback bool // leave loopback out of the list, so berth adds its own
	bandwidth  bool // add the bandwidth plugin
}

// testNet is a CNI network of the test's own: a bridge bt<hex>, a /24 in 10.199.0.0/16,
// host-local records in a temporary directory. Everything it creates on the host is
// removed when the test ends, whether it passed or not.
type testNet struct {
	name, bridge, subnet string
	dataDir, confDir     string
	cacheDir             string
	m                    *Manager
}

func newTestNet(t *testing.T, o netOpts) *testNet {
	t.Helper()
	requireCNI(t)
	id := cnitest.RandomHex(t, 4)
	n := &testNet{
		name:     "berth-test-" + id,
		bridge:   "bt" + id,
		subnet:   cnitest.FreeSubnet(t, "10.199"),
		dataDir:  t.TempDir(),
		confDir:  t.TempDir(),
		cacheDir: t.TempDir(),
	}
	t.Cleanup(func() { deleteLink(t, n.bridge) })
	cnitest.CleanupPortmapChains(t, false)
	writeFile(t, filepath.Join(n.confDir, "10-test.conflist"), n.conflist(o), 0o644)
	m, err := New(Config{ConfDir: n.confDir, BinDirs: []string{pluginDir}, CacheDir: n.cacheDir}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	n.m = m
	return n
}

func (n *testNet) conflist(o netOpts) string {
	var more []map[string]any
	if o.bandwidth {
		more = append(more, map[string]any{"type": "bandwidth", "capabilities": map[string]bool{"bandwidth": true}})
	}
	if !o.noLoopback {
		more = append(more, map[string]any{"type": "loopback"})
	}
	ranges := [][]map[string]string{{{"subnet": n.subnet}}}
	return string(cnitest.BridgeConflist(n.name, n.bridge, n.dataDir, ranges, o.snat, more...))
}

// gateway is the bridge's address in the test subnet.
func (n *testNet) gateway() net.IP {
	ip, _, _ := net.ParseCIDR(n.subnet)
	ip = ip.To4()
	return net.IPv4(ip[0], ip[1], ip[2], 1)
}

// pod makes a pod with a pinned network namespace. Cleanup tears its network down and
// unpins the namespace.
func (n *testNet) pod(t *testing.T, name string) Pod {
	t.Helper()
	id := cnitest.RandomHex(t, 16)
	pinned, err := nspin.Pin(filepath.Join(t.TempDir(), "ns"), nspin.Net)
	if err != nil {
		t.Fatal(err)
	}
	p := Pod{ID: id, Name: name, Namespace: "test", UID: "uid-" + id[:8], NetNS: pinned.Net}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := n.m.Teardown(ctx, p); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		if err := pinned.Remove(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return p
}

// dnatChain is the name portmap gives a pod's DNAT chain.
func (n *testNet) dnatChain(podID string) string {
	sum := sha512.Sum512([]byte(n.name + podID))
	return "CNI-DN-" + hex.EncodeToString(sum[:])[:28-len("CNI-DN-")]
}

// hostVeth returns the host side of the pod's veth from a Setup result.
func hostVeth(t testing.TB, r Result) string {
	t.Helper()
	var cur current.Result
	if err := json.Unmarshal(r.Raw, &cur); err != nil {
		t.Error(err)
		return ""
	}
	for _, i := range cur.Interfaces {
		if i.Sandbox == "" && strings.HasPrefix(i.Name, "veth") {
			return i.Name
		}
	}
	t.Errorf("no host veth in result %s", r.Raw) // Errorf: also called off the test goroutine
	return ""
}

// waitGone waits for a host interface to disappear (a veth goes when the kernel finishes
// destroying its peer's namespace, asynchronously).
func waitGone(t testing.TB, name string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if !cnitest.LinkExists(name) {
			return
		}
	}
	t.Errorf("interface %s still exists", name)
}

func deleteLink(t testing.TB, name string) {
	if !cnitest.LinkExists(name) {
		return
	}
	if out, err := exec.Command("ip", "link", "del", name).CombinedOutput(); err != nil {
		t.Errorf("delete %s: %v: %s", name, err, out)
	}
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tlogWriter struct{ t testing.TB }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
