package network

import (
	"encoding/json"
	"fmt"
	"net"
	"regexp"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// Config configures a Manager.
type Config struct {
	// ConfDir holds the node's CNI network configurations (/etc/cni/net.d). The first
	// valid .conflist, .conf or .json file by name is the pod network.
	ConfDir string
	// BinDirs is the plugin search path, in order.
	BinDirs []string
	// CacheDir keeps libcni's record of every ADD (result, configuration, arguments), so
	// that a DEL after a berthd restart or a configuration change undoes exactly what the
	// ADD did. berthd passes <state>/cni.
	CacheDir string
	// Default is the network used while ConfDir holds no configuration at all, if it is
	// Enabled; otherwise pods wait (NetworkReady false) until a configuration appears.
	Default DefaultNetwork
}

// DefaultNetwork is berth's embedded pod network: a bridge with host-local addresses,
// hostPort forwarding (portmap), traffic shaping (bandwidth) and, as for every network
// without it, berth's loopback network beside it. Zero fields take the defaults below (and
// the zero Enabled is off); real nodes want them as they are, tests change the bridge,
// the subnet and masquerading.
type DefaultNetwork struct {
	// Enabled lets the embedded network serve while the configuration directory is
	// empty. Off, a node joining a cluster keeps its pods waiting for the cluster's
	// network plugin to write its configuration, instead of starting them (CoreDNS
	// first) on addresses of the embedded network that they would keep.
	Enabled bool
	Name    string   // network name; "berth"
	Bridge  string   // bridge device; "berth0"
	Subnets []string // one address range per entry, IPv4 and/or IPv6; ["10.88.0.0/16"]
	// DataDir is where host-local records allocations; "" leaves the plugin's own
	// default (/var/lib/cni/networks).
	DataDir string
	// NoIPMasq turns off masquerading of traffic from pods to outside their subnet.
	// Nodes leave it false so pods reach the world with the node's address.
	NoIPMasq bool
}

// The defaults of DefaultNetwork.
const (
	DefaultNetworkName = "berth"
	DefaultBridge      = "berth0"
	DefaultSubnet      = "10.88.0.0/16"
)

// defaultCNIVersion is what the embedded network speaks: the newest version the plugins
// shipped by distributions (containernetworking-plugins 1.1) understand.
const defaultCNIVersion = "1.0.0"

// netNameRE is what libcni accepts as a network name.
var netNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`)

// withDefaults fills the zero fields of d.
func (d DefaultNetwork) withDefaults() DefaultNetwork {
	if d.Name == "" {
		d.Name = DefaultNetworkName
	}
	if d.Bridge == "" {
		d.Bridge = DefaultBridge
	}
	if len(d.Subnets) == 0 {
		d.Subnets = []string{DefaultSubnet}
	}
	return d
}

func (d DefaultNetwork) validate() error {
	d = d.withDefaults()
	if !netNameRE.MatchString(d.Name) {
		return errdefs.InvalidArgument(fmt.Sprintf("default network name %q is not a valid CNI network name", d.Name))
	}
	if len(d.Bridge) > 15 {
		return errdefs.InvalidArgument(fmt.Sprintf("default network bridge %q is longer than 15 characters", d.Bridge))
	}
	for _, s := range d.Subnets {
		if _, _, err := net.ParseCIDR(s); err != nil {
			return errdefs.InvalidArgument(fmt.Sprintf("default network subnet %q: %v", s, err))
		}
	}
	return nil
}

// confList renders the default network as a CNI configuration list.
func (d DefaultNetwork) confList() ([]byte, error) {
	if err := d.validate(); err != nil {
		return nil, err
	}
	d = d.withDefaults()
	var ranges [][]map[string]string
	var routes []map[string]string
	v4, v6 := false, false
	for _, s := range d.Subnets {
		ranges = append(ranges, []map[string]string{{"subnet": s}})
		ip, _, _ := net.ParseCIDR(s)
		switch {
		case ip.To4() != nil && !v4:
			v4 = true
			routes = append(routes, map[string]string{"dst": "0.0.0.0/0"})
		case ip.To4() == nil && !v6:
			v6 = true
			routes = append(routes, map[string]string{"dst": "::/0"})
		}
	}
	ipam := map[string]any{"type": "host-local", "ranges": ranges, "routes": routes}
	if d.DataDir != "" {
		ipam["dataDir"] = d.DataDir
	}
	list := map[string]any{
		"cniVersion": defaultCNIVersion,
		"name":       d.Name,
		"plugins": []map[string]any{
			{
				"type":        "bridge",
				"bridge":      d.Bridge,
				"isGateway":   true,
				"ipMasq":      !d.NoIPMasq,
				"hairpinMode": true,
				"ipam":        ipam,
			},
			{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
			{"type": "bandwidth", "capabilities": map[string]bool{"bandwidth": true}},
			// No loopback here: Setup runs berth's own loopback network beside this
			// one, in parallel, instead of last in the chain.
		},
	}
	return json.MarshalIndent(list, "", "  ")
}
