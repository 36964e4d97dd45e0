package sandbox

import (
	"encoding/json"
	"fmt"

	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ContainerStatus reports a container (ContainerStatus) from memory. With verbose,
// info["info"] is a JSON object with the pid, the monitor, the paths and the config.
func (s *Service) ContainerStatus(id string, verbose bool) (*runtimeapi.ContainerStatus, map[string]string, error) {
	c, err := s.getContainer(id)
	if err != nil {
		return nil, nil, err
	}
	st := c.status()
	out := &runtimeapi.ContainerStatus{
		Id:          c.meta.ID,
		Metadata:    c.config.GetMetadata(),
		State:       criContainerState(st.State),
		CreatedAt:   c.meta.CreatedAt,
		StartedAt:   st.StartedAt,
		FinishedAt:  st.FinishedAt,
		ExitCode:    st.ExitCode,
		Image:       c.imageSpec(),
		ImageRef:    c.meta.ImageRef,
		ImageId:     c.meta.ImageID,
		Reason:      st.Reason,
		Message:     st.Message,
		Labels:      c.config.GetLabels(),
		Annotations: c.config.GetAnnotations(),
		Mounts:      c.statusMounts(),
		LogPath:     c.meta.LogPath,
		StopSignal:  criStopSignal(c),
		Resources:   c.resources(st),
		User: &runtimeapi.ContainerUser{Linux: &runtimeapi.LinuxContainerUser{
			Uid: int64(c.meta.User.UID), Gid: int64(c.meta.User.GID), SupplementalGroups: gids(c.meta.User.AdditionalGids),
		}},
	}
	if !verbose {
		return out, nil, nil
	}
	info, err := json.Marshal(containerVerbose{
		ID: c.meta.ID, PodID: c.meta.PodID, State: st.State, Pid: st.Pid, MonitorPid: st.MonitorPid,
		Bundle: s.bundleOf(c.meta.ID), Rootfs: s.rootfsOf(c.meta.ID), MonitorDir: s.monitorOf(c.meta.ID),
		RuntimeHandler: c.meta.Handler, Config: c.meta.Config,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("encode verbose status: %w", err)
	}
	return out, map[string]string{"info": string(info)}, nil
}

type containerVerbose struct {
	ID             string          `json:"id"`
	PodID          string          `json:"sandboxID"`
	State          ContainerState  `json:"state"`
	Pid            int             `json:"pid,omitempty"`
	MonitorPid     int             `json:"monitorPid,omitempty"`
	Bundle         string          `json:"bundle"`
	Rootfs         string          `json:"rootfs"`
	MonitorDir     string          `json:"monitorDir"`
	RuntimeHandler string          `json:"runtimeHandler"`
	Config         json.RawMessage `json:"config"`
}

// criStopSignal is the signal StopContainer sends, in the CRI's terms: the config's,
// else the image's STOPSIGNAL, else SIGTERM. An image signal the CRI has no name for
// (a real-time signal) is RUNTIME_DEFAULT.
func criStopSignal(c *container) runtimeapi.Signal {
	if sig := c.config.GetStopSignal(); sig != runtimeapi.Signal_SIGNAL_RUNTIME_DEFAULT {
		return sig
	}
	sig, err := stopSignal(c)
	if err != nil {
		return runtimeapi.Signal_SIGNAL_RUNTIME_DEFAULT
	}
	return runtimeapi.Signal(runtimeapi.Signal_value["SIGNAL_"+unix.SignalName(sig)])
}

func criContainerState(s ContainerState) runtimeapi.ContainerState {
	switch s {
	case ContainerCreated:
		return runtimeapi.ContainerState_CONTAINER_CREATED
	case ContainerRunning:
		return runtimeapi.ContainerState_CONTAINER_RUNNING
	case ContainerExited:
		return runtimeapi.ContainerState_CONTAINER_EXITED
	}
	return runtimeapi.ContainerState_CONTAINER_UNKNOWN
}

// imageSpec is the image as the pod spec names it, with the id it resolved to.
// kubelet creates containers from the image id and passes the pod spec's
// reference as user_specified_image; it reports image as the container
// status's image, which users (and node conformance) compare with the spec, so
// the reference wins over the id when kubelet gave one.
func (c *container) imageSpec() *runtimeapi.ImageSpec {
	img := proto.Clone(c.config.GetImage()).(*runtimeapi.ImageSpec)
	if img == nil {
		img = &runtimeapi.ImageSpec{Image: c.meta.Image}
	}
	if u := img.GetUserSpecifiedImage(); u != "" {
		img.Image = u
	}
	img.ImageRef = c.meta.ImageID
	return img
}

// statusMounts are the CRI mounts as asked, image volumes with the image's id.
func (c *container) statusMounts() []*runtimeapi.Mount {
	var out []*runtimeapi.Mount
	for _, m := range c.config.GetMounts() {
		m = proto.Clone(m).(*runtimeapi.Mount)
		if m.GetImage() != nil {
			for _, v := range c.meta.ImageVolumes {
				if v.ContainerPath == m.GetContainerPath() {
					m.Image.ImageRef = v.ImageID
				}
			}
		}
		out = append(out, m)
	}
	return out
}

// resources are the last updated resources, else those of the config.
func (c *container) resources(st *containerRevision) *runtimeapi.ContainerResources {
	r := c.config.GetLinux().GetResources()
	if len(st.Resources) > 0 {
		upd := &runtimeapi.LinuxContainerResources{}
		if err := protojson.Unmarshal(st.Resources, upd); err == nil {
			r = upd
		}
	}
	if r == nil {
		return nil
	}
	return &runtimeapi.ContainerResources{Linux: r}
}

func gids(in []uint32) []int64 {
	out := make([]int64, len(in))
	for i, g := range in {
		out[i] = int64(g)
	}
	return out
}

// ListContainers lists the containers matching filter (ListContainers), from memory.
// The id and pod filters match an exact id or the one id it is a unique prefix of.
func (s *Service) ListContainers(filter *runtimeapi.ContainerFilter) []*runtimeapi.Container {
	var ctrs []*container
	if id := filter.GetId(); id != "" {
		if c, err := s.getContainer(id); err == nil {
			ctrs = append(ctrs, c)
		}
	} else {
		s.mu.RLock()
		ctrs = make([]*container, 0, len(s.ctrs))
		for _, c := range s.ctrs {
			ctrs = append(ctrs, c)
		}
		s.mu.RUnlock()
	}
	podID := filter.GetPodSandboxId()
	if podID != "" {
		if p, err := s.get(podID); err == nil {
			podID = p.meta.ID
		}
	}
	out := make([]*runtimeapi.Container, 0, len(ctrs))
	for _, c := range ctrs {
		st := c.status()
		state := criContainerState(st.State)
		switch {
		case podID != "" && c.meta.PodID != podID:
			continue
		case filter.GetState() != nil && filter.GetState().GetState() != state:
			continue
		case !matchLabels(c.config.GetLabels(), filter.GetLabelSelector()):
			continue
		}
		out = append(out, &runtimeapi.Container{
			Id:           c.meta.ID,
			PodSandboxId: c.meta.PodID,
			Metadata:     c.config.GetMetadata(),
			Image:        c.imageSpec(),
			ImageRef:     c.meta.ImageRef,
			ImageId:      c.meta.ImageID,
			State:        state,
			CreatedAt:    c.meta.CreatedAt,
			Labels:       c.config.GetLabels(),
			Annotations:  c.config.GetAnnotations(),
		})
	}
	return out
}
