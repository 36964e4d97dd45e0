package sandbox

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/network"
	"github.com/berth-runtime/berth/sandbox/cgroups"
	"github.com/berth-runtime/berth/sandbox/podfiles"
	"github.com/berth-runtime/berth/sandbox/sysctl"
)

// options is a validated PodSandboxConfig, in the terms the pod code works with.
type options struct {
	handler     string
	hostNetwork bool
	hostIPC     bool
	// sharedPID: the containers share one PID namespace, held by a pause process.
	sharedPID bool
	hostname  string
	dns       *podfiles.DNS
	ports     []network.PortMapping
	bandwidth *network.Bandwidth
	sysctls   map[string]string
	// cgroupParent is kubelet's cgroup_parent; resources what the pod cgroup gets.
	cgroupParent string
	resources    *cgroups.Resources
	// userns is the pod's own user namespace (nil: the node's).
	userns *podUserns
}

// parse validates a PodSandboxConfig and the runtime handler it asks for. Every error
// wraps errdefs.ErrInvalidArgument, except a handler that is configured but cannot run
// pods, or cannot run them in a user namespace (ErrFailedPrecondition).
func (s *Service) parse(cfg *runtimeapi.PodSandboxConfig, handler string) (*options, error) {
	md := cfg.GetMetadata()
	if md.GetName() == "" || md.GetNamespace() == "" {
		return nil, errdefs.InvalidArgument("pod metadata must have a name and a namespace")
	}
	o := &options{sysctls: cfg.GetLinux().GetSysctls(), cgroupParent: cfg.GetLinux().GetCgroupParent()}
	var err error
	if o.handler, err = s.resolveHandler(handler); err != nil {
		return nil, err
	}
	if err := o.namespaces(cfg.GetLinux().GetSecurityContext()); err != nil {
		return nil, err
	}
	if o.userns != nil && !s.cfg.Handlers[o.handler].Features.UserNamespaces {
		return nil, errdefs.FailedPrecondition(fmt.Sprintf(
			"runtime handler %q cannot run pods in a user namespace: its OCI runtime has no idmapped mounts (runc >= 1.2 has)", o.handler))
	}
	if err := o.identity(cfg); err != nil {
		return nil, err
	}
	if err := o.portsAndBandwidth(cfg); err != nil {
		return nil, err
	}
	if err := sysctl.Validate(o.sysctls, sysctl.Namespaces{Net: !o.hostNetwork, IPC: !o.hostIPC}); err != nil {
		return nil, err
	}
	if dir := cfg.GetLogDirectory(); dir != "" && (!filepath.IsAbs(dir) || filepath.Clean(dir) != dir) {
		return nil, errdefs.InvalidArgument(fmt.Sprintf("log directory %q: not an absolute, clean path", dir))
	}
	if err := cgroups.ValidateParent(s.cfg.Cgroups.Driver(), o.cgroupParent); err != nil {
		return nil, err
	}
	l := cfg.GetLinux()
	if o.resources, err = cgroups.PodResources(l.GetOverhead(), l.GetResources()); err != nil {
		return nil, err
	}
	return o, nil
}

// resolveHandler maps "" to the default handler and checks the handler can run pods.
func (s *Service) resolveHandler(name string) (string, error) {
	if name == "" {
		name = s.cfg.DefaultHandler
	}
	h, ok := s.cfg.Handlers[name]
	if !ok {
		return "", errdefs.InvalidArgument(fmt.Sprintf("unknown runtime handler %q", name))
	}
	if h.Err != nil {
		return "", fmt.Errorf("runtime handler %q cannot run pods: %w: %w", name, h.Err, errdefs.ErrFailedPrecondition)
	}
	return name, nil
}

// namespaces reads the NamespaceOption. Network and IPC are the pod's or the node's;
// the PID namespace is the pod's (shared, with pause), per container, the node's, or
// (TARGET, meaningful only for containers) per container as far as the pod goes.
func (o *options) namespaces(sc *runtimeapi.LinuxSandboxSecurityContext) error {
	ns := sc.GetNamespaceOptions()
	for _, n := range []struct {
		what string
		mode runtimeapi.NamespaceMode
		host *bool
	}{{"network", ns.GetNetwork(), &o.hostNetwork}, {"IPC", ns.GetIpc(), &o.hostIPC}} {
		switch n.mode {
		case runtimeapi.NamespaceMode_POD:
		case runtimeapi.NamespaceMode_NODE:
			*n.host = true
		default:
			return errdefs.InvalidArgument(fmt.Sprintf("%s namespace mode %s: a pod's is POD or NODE", n.what, n.mode))
		}
	}
	switch m := ns.GetPid(); m {
	case runtimeapi.NamespaceMode_POD:
		o.sharedPID = true
	case runtimeapi.NamespaceMode_CONTAINER, runtimeapi.NamespaceMode_NODE, runtimeapi.NamespaceMode_TARGET:
	default:
		return errdefs.InvalidArgument(fmt.Sprintf("PID namespace mode %s is unknown", m))
	}
	var err error
	if o.userns, err = parseUserns(ns.GetUsernsOptions()); err != nil {
		return err
	}
	if o.userns != nil && (o.hostNetwork || o.hostIPC || ns.GetPid() == runtimeapi.NamespaceMode_NODE) {
		// The node's namespaces are owned by the node's user namespace: a container's root
		// could not administer them, nor mount sysfs, mqueue or /proc for them.
		return errdefs.InvalidArgument("a pod with its own user namespace cannot use the node's network, IPC or PID namespace")
	}
	if sc.GetRunAsGroup() != nil && sc.GetRunAsUser() == nil {
		return errdefs.InvalidArgument("run_as_group is set without run_as_user")
	}
	return nil
}

// identity reads the hostname and the DNS settings. A host-network pod has the node's
// hostname, as kubelet expects; so has a pod whose config names none.
func (o *options) identity(cfg *runtimeapi.PodSandboxConfig) error {
	o.hostname = cfg.GetHostname()
	if err := podfiles.ValidateHostname(o.hostname); err != nil {
		return err
	}
	if o.hostNetwork || o.hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("node hostname: %w", err)
		}
		o.hostname = h
	}
	if d := cfg.GetDnsConfig(); d != nil {
		o.dns = &podfiles.DNS{Servers: d.GetServers(), Searches: d.GetSearches(), Options: d.GetOptions()}
		if err := podfiles.ValidateDNS(o.dns); err != nil {
			return err
		}
	}
	return nil
}

// portsAndBandwidth reads the host ports and the bandwidth annotations; a host-network
// pod has no CNI network to apply them to, so it has neither.
func (o *options) portsAndBandwidth(cfg *runtimeapi.PodSandboxConfig) error {
	bw, err := network.BandwidthFromAnnotations(cfg.GetAnnotations())
	if err != nil {
		return err
	}
	if o.hostNetwork {
		return nil
	}
	o.bandwidth = bw
	for _, pm := range cfg.GetPortMappings() {
		if pm.GetHostPort() == 0 {
			continue
		}
		if pm.GetHostPort() < 0 || pm.GetHostPort() > 65535 || pm.GetContainerPort() <= 0 || pm.GetContainerPort() > 65535 {
			return errdefs.InvalidArgument(fmt.Sprintf("port mapping %d->%d: ports must be in 1..65535", pm.GetHostPort(), pm.GetContainerPort()))
		}
		proto, ok := protocols[pm.GetProtocol()]
		if !ok {
			return errdefs.InvalidArgument(fmt.Sprintf("port mapping %d: unknown protocol %s", pm.GetHostPort(), pm.GetProtocol()))
		}
		o.ports = append(o.ports, network.PortMapping{
			HostPort: pm.GetHostPort(), ContainerPort: pm.GetContainerPort(), Protocol: proto, HostIP: pm.GetHostIp(),
		})
	}
	return nil
}

var protocols = map[runtimeapi.Protocol]string{
	runtimeapi.Protocol_TCP:  "tcp",
	runtimeapi.Protocol_UDP:  "udp",
	runtimeapi.Protocol_SCTP: "sctp",
}

// fingerprint identifies a RunPodSandbox request: kubelet's retry sends the same bytes.
func fingerprint(cfg *runtimeapi.PodSandboxConfig, handler string) (string, error) {
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(cfg)
	if err != nil {
		return "", fmt.Errorf("encode pod config: %w", err)
	}
	h := sha256.New()
	h.Write(data)
	h.Write([]byte{0})
	h.Write([]byte(handler))
	return hex.EncodeToString(h.Sum(nil)), nil
}
