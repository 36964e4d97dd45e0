package network

import (
	"fmt"
	"net"
	"strings"

	"github.com/containernetworking/cni/libcni"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// podIfName is the pod's interface, as Kubernetes expects it.
const podIfName = "eth0"

// Pod is what the network needs to know about a pod sandbox.
type Pod struct {
	ID        string // sandbox id; the CNI container id
	Name      string
	Namespace string
	UID       string
	// NetNS is the pinned network namespace (internal/nspin). Teardown accepts a path
	// that is gone or empty.
	NetNS        string
	PortMappings []PortMapping // entries with HostPort 0 are ignored
	DNS          *DNS
	Bandwidth    *Bandwidth
	// IPRanges asks IPAM for addresses from these ranges (the "ipRanges" capability);
	// each inner list is one range set, typically one per IP family.
	IPRanges [][]IPRange
}

// PortMapping forwards HostIP:HostPort on the node to ContainerPort in the pod.
type PortMapping struct {
	HostPort      int32  `json:"hostPort"`
	ContainerPort int32  `json:"containerPort"`
	Protocol      string `json:"protocol"`         // "tcp" (the default), "udp" or "sctp"
	HostIP        string `json:"hostIP,omitempty"` // "" is every address of the node
}

// DNS is the pod's resolver configuration (the "dns" capability).
type DNS struct {
	Servers  []string `json:"servers,omitempty"`
	Searches []string `json:"searches,omitempty"`
	Options  []string `json:"options,omitempty"`
}

// Bandwidth limits the pod's traffic (the "bandwidth" capability). Rates are in bits per
// second, bursts in bits; zero means no limit in that direction.
type Bandwidth struct {
	IngressRate  uint64 `json:"ingressRate,omitempty"`
	IngressBurst uint64 `json:"ingressBurst,omitempty"`
	EgressRate   uint64 `json:"egressRate,omitempty"`
	EgressBurst  uint64 `json:"egressBurst,omitempty"`
}

// IPRange is one entry of the "ipRanges" capability.
type IPRange struct {
	Subnet     string `json:"subnet"`
	RangeStart string `json:"rangeStart,omitempty"`
	RangeEnd   string `json:"rangeEnd,omitempty"`
	Gateway    string `json:"gateway,omitempty"`
}

// String names the pod in errors and logs.
func (p Pod) String() string {
	return fmt.Sprintf("pod %s/%s (%s)", p.Namespace, p.Name, p.ID)
}

// cniArgs are the CNI_ARGS every Kubernetes CNI plugin expects.
func (p Pod) cniArgs() [][2]string {
	return [][2]string{
		{"IgnoreUnknown", "1"},
		{"K8S_POD_NAMESPACE", p.Namespace},
		{"K8S_POD_NAME", p.Name},
		{"K8S_POD_INFRA_CONTAINER_ID", p.ID},
		{"K8S_POD_UID", p.UID},
	}
}

// validate checks what ends up in CNI_ARGS and the capability arguments.
func (p Pod) validate() error {
	if p.ID == "" {
		return errdefs.InvalidArgument("network: pod has no id")
	}
	for _, v := range []string{p.ID, p.Name, p.Namespace, p.UID} {
		if strings.ContainsAny(v, ";=") {
			return errdefs.InvalidArgument(fmt.Sprintf("network: %s: %q cannot be passed in CNI_ARGS", p, v))
		}
	}
	for _, pm := range p.PortMappings {
		if pm.HostPort == 0 {
			continue
		}
		if pm.HostPort < 0 || pm.HostPort > 65535 || pm.ContainerPort <= 0 || pm.ContainerPort > 65535 {
			return errdefs.InvalidArgument(fmt.Sprintf("network: %s: port mapping %d->%d out of range", p, pm.HostPort, pm.ContainerPort))
		}
		if _, err := protocol(pm.Protocol); err != nil {
			return errdefs.InvalidArgument(fmt.Sprintf("network: %s: %v", p, err))
		}
		if pm.HostIP != "" && net.ParseIP(pm.HostIP) == nil {
			return errdefs.InvalidArgument(fmt.Sprintf("network: %s: host IP %q is not an address", p, pm.HostIP))
		}
	}
	return nil
}

func protocol(s string) (string, error) {
	switch p := strings.ToLower(s); p {
	case "":
		return "tcp", nil
	case "tcp", "udp", "sctp":
		return p, nil
	}
	return "", fmt.Errorf("unknown protocol %q", s)
}

// capabilityArgs builds the runtimeConfig values; libcni passes each key only to the
// plugins that declare the capability.
func (p Pod) capabilityArgs() map[string]any {
	args := map[string]any{}
	var pms []PortMapping
	for _, pm := range p.PortMappings {
		if pm.HostPort == 0 {
			continue
		}
		pm.Protocol, _ = protocol(pm.Protocol) // validated
		pms = append(pms, pm)
	}
	if len(pms) > 0 {
		args["portMappings"] = pms
	}
	if p.DNS != nil {
		args["dns"] = *p.DNS
	}
	if p.Bandwidth != nil && *p.Bandwidth != (Bandwidth{}) {
		args["bandwidth"] = *p.Bandwidth
	}
	if len(p.IPRanges) > 0 {
		args["ipRanges"] = p.IPRanges
	}
	return args
}

// runtimeConf is the pod's attachment to its network, on eth0.
func (p Pod) runtimeConf(netns string) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{
		ContainerID:    p.ID,
		NetNS:          netns,
		IfName:         podIfName,
		Args:           p.cniArgs(),
		CapabilityArgs: p.capabilityArgs(),
	}
}

// loopbackConf is the pod's attachment to berth's loopback network, on lo.
func (p Pod) loopbackConf(netns string) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{ContainerID: p.ID, NetNS: netns, IfName: "lo", Args: p.cniArgs()}
}
