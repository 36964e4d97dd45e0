package sandbox

import (
	"encoding/json"
	"fmt"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/sandbox/cgroups"
)

// PodStatus reports a pod (PodSandboxStatus) from memory: no disk I/O, no exec. With
// verbose, info["info"] is a JSON object with the pause pid, namespace paths, cgroup,
// files and the pod's config.
func (s *Service) PodStatus(id string, verbose bool) (*runtimeapi.PodSandboxStatus, map[string]string, error) {
	p, err := s.get(id)
	if err != nil {
		return nil, nil, err
	}
	st := p.status()
	status := &runtimeapi.PodSandboxStatus{
		Id:             p.meta.ID,
		Metadata:       p.config.GetMetadata(),
		State:          criState(p.ready()),
		CreatedAt:      p.meta.CreatedAt,
		Labels:         p.config.GetLabels(),
		Annotations:    p.config.GetAnnotations(),
		RuntimeHandler: p.meta.Handler,
		Linux: &runtimeapi.LinuxPodSandboxStatus{Namespaces: &runtimeapi.Namespace{
			Options: namespaceOptions(p.config),
		}},
	}
	if !p.opts.hostNetwork && len(st.IPs) > 0 {
		status.Network = &runtimeapi.PodSandboxNetworkStatus{Ip: st.IPs[0]}
		for _, ip := range st.IPs[1:] {
			status.Network.AdditionalIps = append(status.Network.AdditionalIps, &runtimeapi.PodIP{Ip: ip})
		}
	}
	if !verbose {
		return status, nil, nil
	}
	info, err := s.verboseInfo(p, st)
	if err != nil {
		return nil, nil, err
	}
	return status, map[string]string{"info": info}, nil
}

func criState(ready bool) runtimeapi.PodSandboxState {
	if ready {
		return runtimeapi.PodSandboxState_SANDBOX_READY
	}
	return runtimeapi.PodSandboxState_SANDBOX_NOTREADY
}

// namespaceOptions echoes the pod's namespace options (POD for whatever was not set).
func namespaceOptions(cfg *runtimeapi.PodSandboxConfig) *runtimeapi.NamespaceOption {
	ns := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions()
	return &runtimeapi.NamespaceOption{
		Network: ns.GetNetwork(), Pid: ns.GetPid(), Ipc: ns.GetIpc(), TargetId: ns.GetTargetId(),
		UsernsOptions: ns.GetUsernsOptions(),
	}
}

// verbose is the JSON of a verbose PodSandboxStatus.
type verbose struct {
	ID             string          `json:"id"`
	State          State           `json:"state"`
	Reason         string          `json:"reason,omitempty"`
	RuntimeHandler string          `json:"runtimeHandler"`
	Pid            int             `json:"pid,omitempty"`
	NetNS          string          `json:"netns,omitempty"`
	IPCNS          string          `json:"ipcns,omitempty"`
	UTSNS          string          `json:"utsns,omitempty"`
	IPs            []string        `json:"ips,omitempty"`
	Shm            string          `json:"shm,omitempty"`
	Hostname       string          `json:"hostname"`
	CgroupParent   string          `json:"cgroupParent,omitempty"`
	CgroupsPath    string          `json:"cgroupsPath,omitempty"`
	PodDir         string          `json:"podDir"`
	Resources      json.RawMessage `json:"resources,omitempty"`
	Config         json.RawMessage `json:"config"`
}

func (s *Service) verboseInfo(p *pod, st *revision) (string, error) {
	v := verbose{
		ID: p.meta.ID, State: st.State, Reason: st.Reason, RuntimeHandler: p.meta.Handler,
		NetNS: st.Namespaces.Net, IPCNS: st.Namespaces.IPC, UTSNS: st.Namespaces.UTS,
		IPs: st.IPs, Shm: st.Shm, Hostname: p.opts.hostname, CgroupParent: p.opts.cgroupParent,
		PodDir: s.podDir(p.meta.ID), Resources: st.Resources, Config: p.meta.Config,
	}
	if st.Infra != nil {
		v.Pid = st.Infra.PID
		if names, err := cgroups.ContainerNames(s.cfg.Cgroups.Driver(), p.opts.cgroupParent, p.meta.ID); err == nil {
			v.CgroupsPath = names.CgroupsPath
		}
	}
	data, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encode verbose status: %w", err)
	}
	return string(data), nil
}

// ListPods lists the pods matching filter (ListPodSandbox), from memory. The id filter
// matches an exact id or the one id it is a unique prefix of.
func (s *Service) ListPods(filter *runtimeapi.PodSandboxFilter) []*runtimeapi.PodSandbox {
	var pods []*pod
	if id := filter.GetId(); id != "" {
		if p, err := s.get(id); err == nil {
			pods = append(pods, p)
		}
	} else {
		s.mu.RLock()
		pods = make([]*pod, 0, len(s.pods))
		for _, p := range s.pods {
			pods = append(pods, p)
		}
		s.mu.RUnlock()
	}
	out := make([]*runtimeapi.PodSandbox, 0, len(pods))
	for _, p := range pods {
		state := criState(p.ready())
		if f := filter.GetState(); f != nil && f.GetState() != state {
			continue
		}
		if !matchLabels(p.config.GetLabels(), filter.GetLabelSelector()) {
			continue
		}
		out = append(out, &runtimeapi.PodSandbox{
			Id:             p.meta.ID,
			Metadata:       p.config.GetMetadata(),
			State:          state,
			CreatedAt:      p.meta.CreatedAt,
			Labels:         p.config.GetLabels(),
			Annotations:    p.config.GetAnnotations(),
			RuntimeHandler: p.meta.Handler,
		})
	}
	return out
}

// matchLabels reports whether labels has every key of selector with its value.
func matchLabels(labels, selector map[string]string) bool {
	for k, v := range selector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}
