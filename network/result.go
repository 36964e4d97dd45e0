package network

import (
	"encoding/json"
	"fmt"
	"net"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
)

// Result is what the pod got from its network.
type Result struct {
	// IPs are the pod's addresses on its interface: the primary first, IPv4 before IPv6.
	IPs []net.IP
	// Interface is the pod's interface, "eth0".
	Interface string
	// Network names the CNI network the pod is attached to.
	Network string
	// Raw is the plugins' result as CNI 1.0.0 JSON (routes, gateways, DNS, MACs), for
	// whoever needs more than the addresses.
	Raw json.RawMessage
}

// toResult converts a plugin chain's result to a Result.
func toResult(network string, r types.Result) (Result, error) {
	cur, err := current.NewResultFromResult(r)
	if err != nil {
		return Result{}, fmt.Errorf("convert CNI result: %w", err)
	}
	raw, err := json.Marshal(cur)
	if err != nil {
		return Result{}, fmt.Errorf("encode CNI result: %w", err)
	}
	res := Result{Interface: podIfName, Network: network, Raw: raw}
	var v6 []net.IP
	for _, ip := range cur.IPs {
		if !onPodInterface(cur, ip) {
			continue
		}
		if v4 := ip.Address.IP.To4(); v4 != nil {
			res.IPs = append(res.IPs, v4)
		} else {
			v6 = append(v6, ip.Address.IP)
		}
	}
	res.IPs = append(res.IPs, v6...)
	return res, nil
}

// onPodInterface reports whether ip belongs to the pod's interface; an address with no
// interface index is taken to (single-interface plugins often leave it out).
func onPodInterface(r *current.Result, ip *current.IPConfig) bool {
	if ip.Interface == nil {
		return true
	}
	i := *ip.Interface
	if i < 0 || i >= len(r.Interfaces) {
		return false
	}
	return r.Interfaces[i].Sandbox != "" && r.Interfaces[i].Name == podIfName
}
