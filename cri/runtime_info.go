package cri

import (
	"context"
	"encoding/json"
	"runtime/debug"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// runtimeService serves RuntimeService. RPCs that berth does not implement yet answer
// Unimplemented through the embedded type.
type runtimeService struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	opts Options
}

const (
	runtimeName = "berth"
	// kubeAPIVersion is the CRI version field kubelet expects from every runtime.
	kubeAPIVersion = "0.1.0"
)

// Version returns berth's version as recorded in the binary's build info.
func (r *runtimeService) Version(context.Context, *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{
		Version:           kubeAPIVersion,
		RuntimeName:       runtimeName,
		RuntimeVersion:    buildVersion(),
		RuntimeApiVersion: "v1",
	}, nil
}

func buildVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	version := info.Main.Version
	if version == "" || version == "(devel)" {
		version = "devel"
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			version += "+" + s.Value[:12]
		}
	}
	return version
}

// Status reports RuntimeReady and NetworkReady, the runtime handlers with the features
// probed from their binaries, and with verbose the effective configuration.
func (r *runtimeService) Status(_ context.Context, req *runtimeapi.StatusRequest) (*runtimeapi.StatusResponse, error) {
	resp := &runtimeapi.StatusResponse{
		Status: &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{
			condition(runtimeapi.RuntimeReady, "RuntimeNotReady", r.opts.RuntimeReady),
			condition(runtimeapi.NetworkReady, "NetworkPluginNotReady", r.opts.NetworkReady),
		}},
		// Containers resolve their groups themselves (sandbox/spec.ResolveUser), so the
		// Merge and Strict policies hold whatever the OCI runtime is.
		Features: &runtimeapi.RuntimeFeatures{SupplementalGroupsPolicy: r.opts.Containers != nil},
	}
	for _, h := range r.opts.Handlers {
		features := &runtimeapi.RuntimeHandlerFeatures{
			RecursiveReadOnlyMounts: h.RecursiveReadOnlyMounts,
			UserNamespaces:          h.UserNamespaces,
		}
		resp.RuntimeHandlers = append(resp.RuntimeHandlers, &runtimeapi.RuntimeHandler{Name: h.Name, Features: features})
		if h.Name == r.opts.DefaultHandler {
			// The handler kubelet names with "" is the default one.
			resp.RuntimeHandlers = append(resp.RuntimeHandlers, &runtimeapi.RuntimeHandler{Features: features})
		}
	}
	if req.GetVerbose() {
		cfg, err := json.Marshal(r.opts.EffectiveConfig)
		if err != nil {
			return nil, err
		}
		resp.Info = map[string]string{"config": string(cfg)}
	}
	return resp, nil
}

func condition(kind, reason string, ready func() error) *runtimeapi.RuntimeCondition {
	c := &runtimeapi.RuntimeCondition{Type: kind, Status: true}
	if ready == nil {
		return c
	}
	if err := ready(); err != nil {
		c.Status = false
		c.Reason = reason
		c.Message = err.Error()
	}
	return c
}

// RuntimeConfig tells kubelet which cgroup driver berth uses, so the two never disagree.
func (r *runtimeService) RuntimeConfig(context.Context, *runtimeapi.RuntimeConfigRequest) (*runtimeapi.RuntimeConfigResponse, error) {
	driver := runtimeapi.CgroupDriver_CGROUPFS
	if r.opts.CgroupDriver == "systemd" {
		driver = runtimeapi.CgroupDriver_SYSTEMD
	}
	return &runtimeapi.RuntimeConfigResponse{
		Linux: &runtimeapi.LinuxRuntimeConfiguration{CgroupDriver: driver},
	}, nil
}

// UpdateRuntimeConfig takes kubelet's pod CIDR: the pod network hands it to the CNI
// plugins that declare the ipRanges capability (network.Manager.SetPodCIDR). An empty
// CIDR changes nothing (kubelet sends the whole config, often without one).
func (r *runtimeService) UpdateRuntimeConfig(ctx context.Context, req *runtimeapi.UpdateRuntimeConfigRequest) (*runtimeapi.UpdateRuntimeConfigResponse, error) {
	cidr := req.GetRuntimeConfig().GetNetworkConfig().GetPodCidr()
	if cidr == "" {
		return &runtimeapi.UpdateRuntimeConfigResponse{}, nil
	}
	if r.opts.SetPodCIDR != nil {
		if err := r.opts.SetPodCIDR(cidr); err != nil {
			return nil, err
		}
	}
	r.opts.Log.InfoContext(ctx, "kubelet set the pod CIDR", "pod_cidr", cidr)
	return &runtimeapi.UpdateRuntimeConfigResponse{}, nil
}
