package cnitest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// RandomHex returns n random bytes in hex.
func RandomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// FreeSubnet picks a /24 in prefix.0.0/16 (prefix is like "10.199") that no host
// interface uses.
func FreeSubnet(t testing.TB, prefix string) string {
	t.Helper()
	addrs, _ := net.InterfaceAddrs()
	for range 100 {
		x, _ := rand.Int(rand.Reader, big.NewInt(256))
		_, sub, _ := net.ParseCIDR(fmt.Sprintf("%s.%d.0/24", prefix, x))
		used := false
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && sub.Contains(ipn.IP) {
				used = true
			}
		}
		if !used {
			return sub.String()
		}
	}
	t.Fatal("no free test subnet")
	return ""
}

// LinkExists reports whether a host interface exists.
func LinkExists(name string) bool {
	_, err := os.Stat(filepath.Join("/sys/class/net", name))
	return err == nil
}

// Allocated lists the addresses host-local holds for network in dataDir.
func Allocated(t testing.TB, dataDir, network string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dataDir, network))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var ips []string
	for _, e := range entries {
		if net.ParseIP(e.Name()) != nil {
			ips = append(ips, e.Name())
		}
	}
	return ips
}

// BridgePorts lists the interfaces enslaved to bridge (the host sides of pods' veths).
func BridgePorts(t testing.TB, bridge string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join("/sys/class/net", bridge, "brif"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// IPTablesMentions returns the lines of iptables-save (all tables) that mention any of
// the needles.
func IPTablesMentions(t testing.TB, needles ...string) []string {
	t.Helper()
	out, err := exec.Command("iptables-save").CombinedOutput()
	if err != nil {
		t.Fatalf("iptables-save: %v: %s", err, out)
	}
	var hits []string
	for _, line := range strings.Split(string(out), "\n") {
		for _, s := range needles {
			if strings.Contains(line, s) {
				hits = append(hits, line)
				break
			}
		}
	}
	return hits
}

// MountsUnder returns the lines of /proc/self/mountinfo whose mount point is under dir.
func MountsUnder(t testing.TB, dir string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir) {
			out = append(out, line)
		}
	}
	return out
}

// portmapShared are portmap's shared nat chains and the rules that jump to them, as
// portmap 1.x writes them. Pod chains (CNI-DN-*) go with DEL; these stay for the next pod.
var portmapShared = []struct {
	chain string
	jumps [][]string // full rule specs in other chains
}{
	{"CNI-HOSTPORT-DNAT", [][]string{
		{"PREROUTING", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "CNI-HOSTPORT-DNAT"},
		{"OUTPUT", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "CNI-HOSTPORT-DNAT"},
	}},
	{"CNI-HOSTPORT-MASQ", [][]string{
		{"POSTROUTING", "-m", "comment", "--comment", "CNI portfwd requiring masquerade", "-j", "CNI-HOSTPORT-MASQ"},
	}},
	{"CNI-HOSTPORT-SETMARK", nil},
}

func natChainExists(chain string) bool {
	return exec.Command("iptables", "-w", "-t", "nat", "-S", chain).Run() == nil
}

// CleanupPortmapChains removes, when the test ends, the shared chains portmap created
// during the test, unless a pod on this host (another test's) still uses them. With
// leaveInUse, a chain that iptables says is in use (a pod of another test took it
// meanwhile) is logged and left; without it, that is a test error.
func CleanupPortmapChains(t *testing.T, leaveInUse bool) {
	existed := map[string]bool{}
	for _, s := range portmapShared {
		existed[s.chain] = natChainExists(s.chain)
	}
	t.Cleanup(func() {
		out, err := exec.Command("iptables", "-w", "-t", "nat", "-S", "CNI-HOSTPORT-DNAT").Output()
		if err == nil && strings.Contains("\n"+string(out), "\n-A ") {
			return // some pod still forwards ports
		}
		for _, s := range portmapShared {
			if existed[s.chain] || !natChainExists(s.chain) {
				continue
			}
			for _, j := range s.jumps {
				args := append([]string{"-w", "-t", "nat", "-D"}, j...)
				for exec.Command("iptables", args...).Run() == nil {
				}
			}
			for _, op := range []string{"-F", "-X"} {
				out, err := exec.Command("iptables", "-w", "-t", "nat", op, s.chain).CombinedOutput()
				switch {
				case err == nil:
				case leaveInUse && (strings.Contains(string(out), "busy") || strings.Contains(string(out), "in use")):
					t.Logf("iptables %s %s: in use by someone else now; left", op, s.chain)
					return
				default:
					t.Errorf("iptables %s %s: %v: %s", op, s.chain, err, out)
				}
			}
		}
	})
}

// BridgeConflist is the conflist of a test network called name: the bridge plugin on
// bridge as the gateway, without masquerading, with host-local handing out ranges and
// keeping its records in dataDir; then portmap (snat: it masquerades localhost and
// hairpin traffic, needed for 127.0.0.1:<hostPort> to reach the pod); then more.
func BridgeConflist(name, bridge, dataDir string, ranges [][]map[string]string, snat bool, more ...map[string]any) []byte {
	plugins := []map[string]any{
		{
			"type": "bridge", "bridge": bridge, "isGateway": true, "ipMasq": false, "hairpinMode": true,
			"ipam": map[string]any{
				"type":    "host-local",
				"ranges":  ranges,
				"dataDir": dataDir,
			},
		},
		{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}, "snat": snat},
	}
	plugins = append(plugins, more...)
	b, _ := json.Marshal(map[string]any{"cniVersion": "1.0.0", "name": name, "plugins": plugins})
	return b
}
