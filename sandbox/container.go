package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	nriapi "github.com/containerd/nri/pkg/api"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/encoding/protojson"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/sandbox/cgroups"
	"github.com/berth-runtime/berth/sandbox/monitor"
)

// ContainerState is a container's recorded state (see the diagram in doc_containers.go).
type ContainerState string

const (
	// ContainerCreated: its bundle, root filesystem and waiting monitor exist; the OCI
	// runtime knows nothing of it until StartContainer.
	ContainerCreated ContainerState = "created"
	// ContainerRunning: started, not known to have exited.
	ContainerRunning ContainerState = "running"
	// ContainerExited: its process ended; the exit is recorded.
	ContainerExited ContainerState = "exited"
	// ContainerUnknown: its status record could not be read. Never written.
	ContainerUnknown ContainerState = "unknown"
)

// ContainerMetadata is what never changes about a container (its metadata.json).
type ContainerMetadata struct {
	ID      string `json:"id"`
	PodID   string `json:"podId"`
	Name    string `json:"name"`
	Attempt uint32 `json:"attempt"`
	// Handler is the pod's runtime handler.
	Handler   string `json:"handler"`
	CreatedAt int64  `json:"createdAt"` // unix nanoseconds
	// Image is the image as kubelet named it; ImageID its config digest; ImageRef the
	// reference reported as image_ref (a repo digest when berth knows one).
	Image    string `json:"image"`
	ImageID  string `json:"imageId"`
	ImageRef string `json:"imageRef"`
	// LogPath is the absolute CRI log path, "" when the container has none.
	LogPath string `json:"logPath,omitempty"`
	// StopSignal is the image's STOPSIGNAL, used when the config names none.
	StopSignal string `json:"stopSignal,omitempty"`
	// User is the process's resolved user, reported in ContainerStatus.user.
	User specs.User `json:"user"`
	// ProcessLabel is the SELinux process label whose MCS level the container holds.
	ProcessLabel string `json:"processLabel,omitempty"`
	// ImageVolumes are the images mounted as volumes, by container path.
	ImageVolumes []ImageVolume `json:"imageVolumes,omitempty"`
	// Fingerprint identifies the request (registrar): a retry must match it.
	Fingerprint string `json:"fingerprint"`
	// Config is the ContainerConfig as kubelet sent it, in protojson.
	Config json.RawMessage `json:"config"`
}

// ImageVolume is an image mounted read-only into a container.
type ImageVolume struct {
	ContainerPath string `json:"containerPath"`
	ImageID       string `json:"imageId"`
	ImageRef      string `json:"imageRef"`
	// Holder is the image lease's holder name (container id + "/" + index).
	Holder string `json:"holder"`
}

// ContainerStatus is what changes (status.json). Resource fields are set while the
// resource may exist, so that Remove after a restart or a failed undo knows what is left.
type ContainerStatus struct {
	State ContainerState `json:"state"`
	// Pid is the container's init; MonitorPid its monitor (sandbox/monitor).
	Pid        int    `json:"pid,omitempty"`
	MonitorPid int    `json:"monitorPid,omitempty"`
	StartedAt  int64  `json:"startedAt,omitempty"`
	FinishedAt int64  `json:"finishedAt,omitempty"`
	ExitCode   int32  `json:"exitCode,omitempty"`
	Reason     string `json:"reason,omitempty"`
	Message    string `json:"message,omitempty"`
	// Rootfs: the root filesystem may be mounted and its writable layer exists.
	Rootfs bool `json:"rootfs,omitempty"`
	// Runtime: the OCI runtime may hold the container (a delete is owed).
	Runtime bool `json:"runtime,omitempty"`
	// Leased: the image (and image volumes) are leased for this container.
	Leased bool `json:"leased,omitempty"`
	// Resources are those of the last UpdateContainerResources, as protojson.
	Resources json.RawMessage `json:"resources,omitempty"`
}

// container is one container in the index. meta and config never change. op serialises
// the operations that change it (start, stop, remove, update); mu guards the status
// writes, which the exit watcher makes without op (a Stop holding op waits for it).
type container struct {
	meta   ContainerMetadata
	config *runtimeapi.ContainerConfig
	key    string // registrar name

	op      sync.Mutex
	removed bool // under op

	mu  sync.Mutex // held to write a status revision
	cur atomic.Pointer[containerRevision]
	// exited is closed once the exit is recorded (or the container is found gone).
	exited chan struct{}
	// watching is set while an exit watcher runs.
	watching atomic.Bool
	// ownMonitor: this berthd launched the monitor, which is its child to reap. A
	// recovered container's monitor belongs to init; its recorded pid may since have
	// been given to one of this berthd's children.
	ownMonitor bool
	// pending is the monitor spawned by CreateContainer, until StartContainer or
	// RemoveContainer (under op); nil for a container recovered after a restart.
	pending *monitor.Pending
	// nriSpec is what NRI plugins see of its spec (sandbox/nri.go), once known.
	nriSpec atomic.Pointer[nriapi.Container]
	// nriStopped: NRI plugins were told the container stopped (they are told once).
	nriStopped atomic.Bool
}

type containerRevision struct {
	ContainerStatus
	rev uint64
}

func (c *container) status() *containerRevision { return c.cur.Load() }

// containerKey is the name a container reserves: kubelet's container name, which
// holds the pod's.
func containerKey(p *pod, m *runtimeapi.ContainerMetadata) string {
	return m.GetName() + "_" + p.meta.Name + "_" + p.meta.Namespace + "_" + p.meta.UID + "_" +
		strconv.FormatUint(uint64(m.GetAttempt()), 10)
}

// recordContainer writes st as the container's next status revision and publishes it.
func (s *Service) recordContainer(c *container, st ContainerStatus) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return s.recordContainerLocked(c, st)
}

func (s *Service) recordContainerLocked(c *container, st ContainerStatus) error {
	var rev uint64 = 1
	if cur := c.status(); cur != nil {
		rev = cur.rev + 1
	}
	if err := s.ctrStore.Update(c.meta.ID, rev, st); err != nil {
		return err
	}
	c.cur.Store(&containerRevision{ContainerStatus: st, rev: rev})
	return nil
}

// getContainer returns the container whose id is id or the one whose id starts with it.
func (s *Service) getContainer(id string) (*container, error) {
	if id == "" {
		return nil, errdefs.InvalidArgument("container id is empty")
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if c, ok := s.ctrs[id]; ok {
		return c, nil
	}
	var found *container
	for cid, c := range s.ctrs {
		if strings.HasPrefix(cid, id) {
			if found != nil {
				return nil, errdefs.NotFound(fmt.Sprintf("container id prefix %q is ambiguous", id))
			}
			found = c
		}
	}
	if found == nil {
		return nil, errdefs.NotFound(fmt.Sprintf("container %q not found", id))
	}
	return found, nil
}

// podContainers returns the containers of pod id.
func (s *Service) podContainers(podID string) []*container {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*container
	for _, c := range s.ctrs {
		if c.meta.PodID == podID {
			out = append(out, c)
		}
	}
	return out
}

func (s *Service) addContainer(c *container) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ctrs[c.meta.ID] = c
}

func (s *Service) dropContainer(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.ctrs, id)
}

// The places of a container's parts.
func (s *Service) ctrDir(id string) string       { return filepath.Join(s.cfg.ContainerStateDir, id) }
func (s *Service) bundleOf(id string) string     { return s.ctrDir(id) }
func (s *Service) rootfsOf(id string) string     { return filepath.Join(s.ctrDir(id), "rootfs") }
func (s *Service) monitorOf(id string) string    { return filepath.Join(s.ctrDir(id), "monitor") }
func (s *Service) rwDirOf(id string) string      { return filepath.Join(s.cfg.ContainerRWDir, id) }
func (s *Service) volumeDir(id string) string    { return filepath.Join(s.ctrDir(id), "volumes") }
func (s *Service) handlerOf(name string) Handler { return s.cfg.Handlers[name] }

// decodeContainerConfig reads the ContainerConfig of a record.
func decodeContainerConfig(raw json.RawMessage) (*runtimeapi.ContainerConfig, error) {
	cfg := &runtimeapi.ContainerConfig{}
	if err := protojson.Unmarshal(raw, cfg); err != nil {
		return nil, fmt.Errorf("container config: %w", err)
	}
	return cfg, nil
}

// watchExit starts the goroutine that records the container's exit, unless one runs.
func (s *Service) watchExit(c *container) {
	if !c.watching.CompareAndSwap(false, true) {
		return
	}
	go s.awaitExit(context.Background(), c)
}

// containerCgroup names the cgroup of container id in pod p.
func (s *Service) containerCgroup(p *pod, id string) (cgroups.Names, error) {
	return cgroups.ContainerNames(s.cfg.Cgroups.Driver(), p.opts.cgroupParent, id)
}
