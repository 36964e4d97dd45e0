package network

import (
	"encoding/json"
	"errors"
	"net"
	"slices"
	"testing"

	"github.com/containernetworking/cni/libcni"
	current "github.com/containernetworking/cni/pkg/types/100"
)

func TestRuntimeConf(t *testing.T) {
	p := Pod{
		ID: "abc", Name: "web", Namespace: "prod", UID: "u-1", NetNS: "/ns",
		PortMappings: []PortMapping{
			{HostPort: 8080, ContainerPort: 80, Protocol: "TCP"},
			{ContainerPort: 9090}, // not forwarded
			{HostPort: 53, ContainerPort: 53, Protocol: "udp", HostIP: "127.0.0.1"},
		},
		DNS:       &DNS{Servers: []string{"10.0.0.10"}},
		Bandwidth: &Bandwidth{}, // no limits: not passed
		IPRanges:  [][]IPRange{{{Subnet: "10.1.0.0/24"}}},
	}
	if err := p.validate(); err != nil {
		t.Fatal(err)
	}
	rt := p.runtimeConf(p.NetNS)
	wantArgs := [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", "prod"}, {"K8S_POD_NAME", "web"},
		{"K8S_POD_INFRA_CONTAINER_ID", "abc"}, {"K8S_POD_UID", "u-1"}}
	if rt.ContainerID != "abc" || rt.IfName != "eth0" || rt.NetNS != "/ns" || !slices.Equal(rt.Args, wantArgs) {
		t.Errorf("runtime conf %+v", rt)
	}
	b, _ := json.Marshal(rt.CapabilityArgs)
	want := `{"dns":{"servers":["10.0.0.10"]},"ipRanges":[[{"subnet":"10.1.0.0/24"}]],` +
		`"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"},{"hostPort":53,"containerPort":53,"protocol":"udp","hostIP":"127.0.0.1"}]}`
	if string(b) != want {
		t.Errorf("capability args\n got %s\nwant %s", b, want)
	}

	for _, bad := range []Pod{
		{},
		{ID: "a;b"},
		{ID: "a", Name: "x=y"},
		{ID: "a", PortMappings: []PortMapping{{HostPort: 70000, ContainerPort: 80}}},
		{ID: "a", PortMappings: []PortMapping{{HostPort: 80}}},
		{ID: "a", PortMappings: []PortMapping{{HostPort: 80, ContainerPort: 80, HostIP: "localhost"}}},
	} {
		if err := bad.validate(); err == nil {
			t.Errorf("validate(%+v) passed", bad)
		}
	}
}

func TestForPodLeavesIdlePluginsOut(t *testing.T) {
	list, err := libcni.NetworkConfFromBytes([]byte(`{"cniVersion": "1.0.0", "name": "n", "plugins": [
		{"type": "bridge"},
		{"type": "portmap", "capabilities": {"portMappings": true}},
		{"type": "bandwidth", "capabilities": {"bandwidth": true}},
		{"type": "portmap", "runtimeConfig": {"portMappings": [{"hostPort": 1, "containerPort": 1, "protocol": "tcp"}]}},
		{"type": "tuning"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		caps map[string]any
		want []string
	}{
		{"no capability args", nil, []string{"bridge", "portmap", "tuning"}}, // static runtimeConfig stays
		{"port mappings", map[string]any{"portMappings": []PortMapping{{HostPort: 1}}}, []string{"bridge", "portmap", "portmap", "tuning"}},
		{"bandwidth", map[string]any{"bandwidth": Bandwidth{IngressRate: 1}}, []string{"bridge", "bandwidth", "portmap", "tuning"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := forPod(list, tt.caps)
			if err != nil {
				t.Fatal(err)
			}
			// What libcni caches must parse back to the same chain.
			again, err := libcni.NetworkConfFromBytes(got.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range []*libcni.NetworkConfigList{got, again} {
				var types []string
				for _, p := range l.Plugins {
					types = append(types, p.Network.Type)
				}
				if !slices.Equal(types, tt.want) || l.Name != "n" || l.CNIVersion != "1.0.0" {
					t.Errorf("chain %v (%s), want %v", types, l.Name, tt.want)
				}
			}
		})
	}
}

func TestToResult(t *testing.T) {
	idx := func(i int) *int { return &i }
	cidr := func(s string) net.IPNet {
		ip, n, _ := net.ParseCIDR(s)
		n.IP = ip
		return *n
	}
	r := &current.Result{
		CNIVersion: "1.0.0",
		Interfaces: []*current.Interface{{Name: "cni0"}, {Name: "veth1"}, {Name: "eth0", Sandbox: "/ns"}, {Name: "net1", Sandbox: "/ns"}},
		IPs: []*current.IPConfig{
			{Address: cidr("fd00::5/64"), Interface: idx(2)},
			{Address: cidr("10.0.0.1/24"), Interface: idx(0)}, // the bridge's
			{Address: cidr("10.0.0.5/24"), Interface: idx(2)},
			{Address: cidr("10.9.0.5/24"), Interface: idx(3)}, // another pod interface
			{Address: cidr("10.0.0.6/24")},                    // no index: the pod's
		},
	}
	got, err := toResult("n", r)
	if err != nil {
		t.Fatal(err)
	}
	want := []net.IP{net.ParseIP("10.0.0.5"), net.ParseIP("10.0.0.6"), net.ParseIP("fd00::5")}
	if !slices.EqualFunc(got.IPs, want, net.IP.Equal) || got.Interface != "eth0" || got.Network != "n" {
		t.Errorf("result %+v, want IPs %v", got, want)
	}
	var back current.Result
	if err := json.Unmarshal(got.Raw, &back); err != nil || len(back.IPs) != 5 {
		t.Errorf("raw result %s: %v", got.Raw, err)
	}
}

func TestLostRace(t *testing.T) {
	tests := []struct {
		msg  string
		want bool
	}{
		{`plugin type="portmap" failed (add): unable to create chain CNI-HOSTPORT-SETMARK: running [/usr/sbin/iptables -t nat -N CNI-HOSTPORT-MASQ --wait]: exit status 4: iptables v1.8.9 (nf_tables):  CHAIN_USER_ADD failed (File exists): chain CNI-HOSTPORT-MASQ`, true},
		{`running [/usr/sbin/iptables -t nat -N CNI-HOSTPORT-DNAT --wait]: exit status 1: iptables: Chain already exists.`, true},
		{`running [/usr/sbin/iptables -t nat -A OUTPUT ...]: exit status 4: iptables v1.8.9 (nf_tables): RULE_APPEND failed (Resource temporarily unavailable)`, true},
		{`plugin type="bridge" failed (add): failed to allocate for range 0: no IP addresses available in range set`, false},
		{`failed to create bridge "bt1": could not add "bt1": file exists`, false},
	}
	for _, tt := range tests {
		if got := lostRace(errors.New(tt.msg)); got != tt.want {
			t.Errorf("lostRace(%q) = %v", tt.msg, got)
		}
	}
}
