package network

import (
	"os/exec"
	"strings"
	"testing"
)

// portmap's shared nat chains and the rules that jump to them, as portmap 1.x writes
// them. Pod chains (CNI-DN-*) go with DEL; these stay for the next pod.
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

// cleanupPortmapChains removes, when the test ends, the shared chains portmap created
// during the test, as long as no other pod (of another test on this host) uses them.
func cleanupPortmapChains(t *testing.T) {
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
				if out, err := exec.Command("iptables", "-w", "-t", "nat", op, s.chain).CombinedOutput(); err != nil {
					t.Errorf("iptables %s %s: %v: %s", op, s.chain, err, out)
				}
			}
		}
	})
}
