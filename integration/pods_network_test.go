package integration

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/nspin"
	"github.com/berth-runtime/berth/network/cnitest"
)

// TestPodHostPort forwards a host port to a pod: a listener the test opens inside the
// pod's network namespace answers on 127.0.0.1:<hostPort>. After the pod stops, the
// forwarding rules are gone.
func TestPodHostPort(t *testing.T) {
	n := newTestNetwork(t)
	cnitest.CleanupPortmapChains(t, true)
	d := startPodDaemon(t, n, "")
	hostPort := freeTCPPort(t)
	id := d.runPod(t, podConfig(t, "web", func(c *runtimeapi.PodSandboxConfig) {
		c.PortMappings = []*runtimeapi.PortMapping{
			{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 8080, HostPort: int32(hostPort)},
			{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 9090}, // no host port
		}
	}))
	d.cleanupPods(t, id)
	_, info := d.podStatus(t, id)
	echoIn(t, info.NetNS, ":8080", "web")

	addr := fmt.Sprintf("127.0.0.1:%d", hostPort)
	if got, err := ask("", addr); err != nil || got != "web" {
		t.Fatalf("host -> %s: %q, %v", addr, got, err)
	}
	if len(cnitest.IPTablesMentions(t, id)) == 0 {
		t.Error("no iptables rule mentions the pod")
	}
	d.stopPod(t, id)
	if rules := cnitest.IPTablesMentions(t, id); len(rules) != 0 {
		t.Errorf("port forwarding left after stop: %q", rules)
	}
	d.removePod(t, id)
	waitNoLeftovers(t, d, n, nil, []string{id})
}

// TestPodsReachEachOther: two pods on the bridge talk to each other by address.
func TestPodsReachEachOther(t *testing.T) {
	n := newTestNetwork(t)
	d := startPodDaemon(t, n, "")
	a := d.runPod(t, podConfig(t, "a"))
	b := d.runPod(t, podConfig(t, "b"))
	d.cleanupPods(t, a, b)
	stA, infoA := d.podStatus(t, a)
	stB, infoB := d.podStatus(t, b)
	if stA.Network.Ip == stB.Network.Ip {
		t.Fatalf("both pods have %s", stA.Network.Ip)
	}
	echoIn(t, infoA.NetNS, ":7000", "a")
	echoIn(t, infoB.NetNS, ":7000", "b")
	for _, c := range []struct{ from, to, want string }{
		{infoA.NetNS, stB.Network.Ip, "b"},
		{infoB.NetNS, stA.Network.Ip, "a"},
	} {
		if got, err := ask(c.from, net.JoinHostPort(c.to, "7000")); err != nil || got != c.want {
			t.Errorf("pod -> %s: %q, %v", c.to, got, err)
		}
	}
	for _, id := range []string{a, b} {
		d.stopPod(t, id)
		d.removePod(t, id)
	}
	waitNoLeftovers(t, d, n, []int{infoA.Pid, infoB.Pid}, []string{a, b})
}

// echoIn serves TCP on addr inside the network namespace netns: each connection gets
// reply and a newline. The listener closes when the test ends.
func echoIn(t *testing.T, netns, addr, reply string) {
	t.Helper()
	var l net.Listener
	err := nspin.Run(netns, nspin.Net, func() (err error) {
		l, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte(reply + "\n"))
			c.Close()
		}
	}()
}

// ask connects to addr, from inside netns when it is not "", and returns the first line
// it reads.
func ask(netns, addr string) (string, error) {
	var c net.Conn
	dial := func() (err error) {
		c, err = net.DialTimeout("tcp", addr, 5*time.Second)
		return err
	}
	var err error
	if netns == "" {
		err = dial()
	} else {
		err = nspin.Run(netns, nspin.Net, dial)
	}
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestDualStackPod: a pod on a network with an IPv4 and an IPv6 range reports both, the
// IPv4 address as ip and the IPv6 one in additional_ips, and has both in its hosts file.
func TestDualStackPod(t *testing.T) {
	n := newDualStackNetwork(t)
	d := startPodDaemon(t, n, "")
	id := d.runPod(t, podConfig(t, "dual"))
	d.cleanupPods(t, id)
	st, info := d.podStatus(t, id)
	v4, extra := st.GetNetwork().GetIp(), st.GetNetwork().GetAdditionalIps()
	if ip := net.ParseIP(v4); ip == nil || ip.To4() == nil {
		t.Fatalf("ip %q, want the IPv4 address", v4)
	}
	_, sub6, _ := net.ParseCIDR(n.subnet6)
	if len(extra) != 1 || !sub6.Contains(net.ParseIP(extra[0].Ip)) {
		t.Fatalf("additional_ips %v, want one address of %s", extra, n.subnet6)
	}
	hosts := readFile(t, info.PodDir+"/hosts")
	for _, ip := range []string{v4, extra[0].Ip} {
		if !strings.Contains(hosts, ip+"\tdual\n") {
			t.Errorf("hosts lacks %s:\n%s", ip, hosts)
		}
	}
	d.stopPod(t, id)
	d.removePod(t, id)
	waitNoLeftovers(t, d, n, []int{info.Pid}, []string{id})
}
