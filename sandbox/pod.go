package sandbox

import (
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"google.golang.org/protobuf/encoding/protojson"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/nspin"
	"github.com/berth-runtime/berth/sandbox/cgroups"
	"github.com/berth-runtime/berth/sandbox/infra"
)

// State is a pod's recorded state (see the state diagram in doc.go).
type State string

const (
	// StateCreating: a create is (or was, when berthd stopped) under way. Recorded only
	// when the create made something that could not be found again from the pod's id
	// alone (a pod cgroup berth created).
	StateCreating State = "creating"
	// StateReady: created, every resource in place.
	StateReady State = "ready"
	// StateNotReady: stopped, or left half-undone by a failed create; Status lists what
	// is still to release.
	StateNotReady State = "notready"
	// StateUnknown: the status record could not be read at start-up. Never written.
	StateUnknown State = "unknown"
)

// Metadata is what never changes about a pod once it exists (store's metadata.json).
type Metadata struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	UID       string `json:"uid"`
	Attempt   uint32 `json:"attempt"`
	// Handler is the runtime handler, "" resolved to the default one.
	Handler   string `json:"handler"`
	CreatedAt int64  `json:"createdAt"` // unix nanoseconds
	// Fingerprint identifies the request (see registrar): a retry must match it.
	Fingerprint string `json:"fingerprint"`
	// Config is the PodSandboxConfig as kubelet sent it, in protojson.
	Config json.RawMessage `json:"config"`
}

// Status is what changes (store's status.json). Every resource field is set while the
// resource exists, so that a Stop or Remove after a restart, or after a failed undo,
// knows what is left to release.
type Status struct {
	State  State  `json:"state"`
	Reason string `json:"reason,omitempty"`
	// Namespaces are the pinned network, IPC and UTS namespaces, and the user namespace
	// that owns them in a user-namespaced pod.
	Namespaces nspin.Pinned `json:"namespaces"`
	// Network: the pod is attached to its CNI network (a DEL is owed).
	Network bool     `json:"network,omitempty"`
	IPs     []string `json:"ips,omitempty"`
	// Shm is the mounted /dev/shm tmpfs.
	Shm string `json:"shm,omitempty"`
	// Cgroup is the pod cgroup, nil when the pod has none.
	Cgroup *cgroups.PodState `json:"cgroup,omitempty"`
	// Infra is the pause process; InfraContainer says the runtime has a container for it
	// (set before Infra is known, so that a crash in between still deletes it).
	Infra          *infra.Record `json:"infra,omitempty"`
	InfraContainer bool          `json:"infraContainer,omitempty"`
	// Resources are the pod-level resources of the last UpdatePodSandboxResources, as a
	// protojson LinuxPodSandboxConfig holding only overhead and resources.
	Resources json.RawMessage `json:"resources,omitempty"`
	StoppedAt int64           `json:"stoppedAt,omitempty"`
}

// released reports whether nothing is left to release but files and records.
func (s *Status) released() bool {
	return s.Namespaces.Net == "" && s.Namespaces.IPC == "" && s.Namespaces.UTS == "" && s.Namespaces.User == "" &&
		!s.Network && s.Shm == "" && s.Infra == nil && !s.InfraContainer
}

// pod is one pod in the index. meta, config and opts never change. op serialises the
// operations that change the pod (stop, remove, update); readers never take it: they
// load cur, the last recorded status, and proc.
type pod struct {
	meta   Metadata
	config *runtimeapi.PodSandboxConfig
	opts   *options
	key    string // registrar name

	op      sync.Mutex
	removed bool // under op
	// life is held shared by CreateContainer and exclusively by StopPod and RemovePod
	// while they stop the pod's containers: no container appears in a pod that goes.
	life sync.RWMutex

	cur  atomic.Pointer[revision]
	proc atomic.Pointer[infra.Process] // the live pause, nil when none
}

// revision is a recorded status and its store revision.
type revision struct {
	Status
	rev uint64
}

func (p *pod) status() *revision { return p.cur.Load() }

// ready reports whether the pod is READY: recorded ready and its pause, if it has one,
// still running.
func (p *pod) ready() bool {
	st := p.status()
	if st == nil || st.State != StateReady {
		return false
	}
	if st.Infra != nil {
		return p.proc.Load().Alive()
	}
	return true
}

// nameKey is the name a pod reserves: kubelet's sandbox name.
func nameKey(m *runtimeapi.PodSandboxMetadata) string {
	return m.GetName() + "_" + m.GetNamespace() + "_" + m.GetUid() + "_" + strconv.FormatUint(uint64(m.GetAttempt()), 10)
}

// decodeConfig reads the PodSandboxConfig of a pod record.
func decodeConfig(raw json.RawMessage) (*runtimeapi.PodSandboxConfig, error) {
	cfg := &runtimeapi.PodSandboxConfig{}
	if err := protojson.Unmarshal(raw, cfg); err != nil {
		return nil, fmt.Errorf("pod config: %w", err)
	}
	return cfg, nil
}
