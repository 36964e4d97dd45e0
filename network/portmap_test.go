package network

import (
	"fmt"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/berth-runtime/berth/network/cnitest"
)

// TestPortMapping forwards a host port to port 80 in a pod and reaches it from the host.
//
// What reaching 127.0.0.1 takes, as verified here with portmap 1.1: with "snat": false
// portmap only writes DNAT rules; a connection to 127.0.0.1:hostPort is DNATed to the
// pod but leaves with source 127.0.0.1, which the kernel will not route onto the bridge
// and the pod could not answer anyway. With "snat": true (portmap's default, and the
// default network's) portmap marks such connections for masquerading and sets
// net.ipv4.conf.<bridge>.route_localnet=1 itself, so 127.0.0.1 works and no global
// sysctl is needed. Without snat, the node's other addresses (here the bridge's) work.
func TestPortMapping(t *testing.T) {
	tests := []struct {
		name   string
		snat   bool
		hostIP string
		dial   func(n *testNet) string // the host address to dial
	}{
		{name: "no snat, via the bridge address", dial: func(n *testNet) string { return n.gateway().String() }},
		{name: "snat, via 127.0.0.1", snat: true, hostIP: "127.0.0.1", dial: func(*testNet) string { return "127.0.0.1" }},
		{name: "snat, all addresses, via 127.0.0.1", snat: true, dial: func(*testNet) string { return "127.0.0.1" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newTestNet(t, netOpts{snat: tt.snat})
			ctx := testCtx(t)
			hostPort := freePort(t)
			p := n.pod(t, "web")
			p.PortMappings = []PortMapping{
				{HostPort: int32(hostPort), ContainerPort: 80, Protocol: "TCP", HostIP: tt.hostIP},
				{ContainerPort: 8080}, // no host port: not forwarded
			}
			echoServer(t, p.NetNS, ":80")
			if _, err := n.m.Setup(ctx, p); err != nil {
				t.Fatal(err)
			}
			chain := n.dnatChain(p.ID)
			if len(cnitest.IPTablesMentions(t, chain)) == 0 {
				t.Fatalf("no DNAT chain %s", chain)
			}
			addr := net.JoinHostPort(tt.dial(n), fmt.Sprint(hostPort))
			if err := ping("", addr); err != nil {
				t.Fatalf("host cannot reach the pod at %s: %v", addr, err)
			}
			if !tt.snat {
				err := ping("", net.JoinHostPort("127.0.0.1", fmt.Sprint(hostPort)))
				t.Logf("without snat, 127.0.0.1:%d: %v (expected to fail)", hostPort, err)
			} else {
				b, _ := os.ReadFile("/proc/sys/net/ipv4/conf/" + n.bridge + "/route_localnet")
				t.Logf("route_localnet on %s: %s", n.bridge, b)
			}
			// portmap 1.1 fails CHECK of an IPv4-only pod: it looks for the pod's chain in
			// ip6tables too (fixed in later plugin releases).
			if err := n.m.Check(ctx, p); err != nil && !strings.Contains(err.Error(), "ipv6 dnat") {
				t.Errorf("Check: %v", err)
			}
			if err := n.m.Teardown(ctx, p); err != nil {
				t.Fatal(err)
			}
			if rules := cnitest.IPTablesMentions(t, chain, p.ID); len(rules) != 0 {
				t.Errorf("iptables rules left after Teardown: %q", rules)
			}
		})
	}
}
