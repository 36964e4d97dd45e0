package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/trash"
	"github.com/berth-runtime/berth/network"
	"github.com/berth-runtime/berth/sandbox/apparmor"
	"github.com/berth-runtime/berth/sandbox/cdi"
	"github.com/berth-runtime/berth/sandbox/cgroups"
	"github.com/berth-runtime/berth/sandbox/diskusage"
	"github.com/berth-runtime/berth/sandbox/infra"
	"github.com/berth-runtime/berth/sandbox/registrar"
	"github.com/berth-runtime/berth/sandbox/runtime"
	"github.com/berth-runtime/berth/sandbox/store"
)

// Network is what pods need of the CNI network (network.Manager).
type Network interface {
	Setup(ctx context.Context, pod network.Pod) (network.Result, error)
	Teardown(ctx context.Context, pod network.Pod) error
	AttachedPods() ([]string, error)
}

// OCIRuntime is what pods and containers ask of a handler's OCI runtime
// (*runtime.Runtime). The unit tests put a stateful fake behind it, as sandbox/infra's
// do, to reach the undo paths without runc.
type OCIRuntime interface {
	infra.OCIRuntime // Run, Delete, State: the pause, and a recovered container's state
	Kill(ctx context.Context, id string, sig syscall.Signal, all bool) error
	Update(ctx context.Context, id string, res *specs.LinuxResources) error
	Exec(ctx context.Context, id string, o runtime.ExecOptions) (int32, error)
	// Abandon deletes what a runtime killed half-way through a create left.
	Abandon(ctx context.Context, id, bundle string)
	// Command is how a container's monitor runs the runtime itself.
	Command() runtime.Command
}

var _ OCIRuntime = (*runtime.Runtime)(nil)

// Handler is one runtime handler as pods see it.
type Handler struct {
	// Runtime runs the containers and the pause of pods that share a PID namespace;
	// nil when Err is set.
	Runtime OCIRuntime
	// Features are what the runtime binary said it supports.
	Features runtime.Features
	// Err is why the handler cannot run pods (its binary is missing); nil when it can.
	Err error
}

// Images is what containers need of the image store (image.Service, adapted by berthd).
type Images interface {
	// Lease pins image ref for holder until Release and returns what a container needs
	// of it. An unknown image fails with errdefs.ErrNotFound.
	Lease(holder, ref string) (ContainerImage, error)
	// Release drops holder's lease; an unknown holder is not an error.
	Release(holder string) error
	// Holders lists every lease holder, for reconciliation after a restart.
	Holders() []string
}

// ContainerImage is an image as a container sees it.
type ContainerImage struct {
	ID  string // config digest
	Ref string // reported as image_ref: a repo digest, else a tag, else the ID
	// Config is the OCI image config JSON.
	Config []byte
	// Layers are the unpacked snapshot directories, base layer first.
	Layers []string
}

// Config wires a Service.
type Config struct {
	// RecordDir holds the durable pod records (<root>/pods).
	RecordDir string
	// StateDir holds each pod's volatile directory: pinned namespaces, shm, files, the
	// pause bundle (<state>/pods/<id>).
	StateDir string
	// Handlers are the runtime handlers by name; DefaultHandler serves "".
	Handlers       map[string]Handler
	DefaultHandler string
	Network        Network
	Cgroups        *cgroups.Manager
	// PauseRootfs is berth's pause rootfs (sandbox/pause.Rootfs); PauseArgs its command.
	PauseRootfs string
	PauseArgs   []string
	// ShmSize is the size in bytes of each pod's /dev/shm.
	ShmSize int64
	// CreateTimeout bounds a RunPodSandbox; the create goes on past the caller's
	// deadline, so that kubelet's retry finds it (see doc.go).
	CreateTimeout time.Duration
	// OOMScoreAdj maps the oom_score_adj berth wants to one it may set
	// (internal/oomscore.Clamp); nil keeps it.
	OOMScoreAdj func(int) int
	Log         *slog.Logger

	// Images serves container root filesystems; nil: containers cannot be created.
	Images Images
	// MonitorPath is the berth-monitor executable.
	MonitorPath string
	// ContainerRecordDir holds the durable container records (<root>/containers),
	// ContainerStateDir each container's bundle, rootfs mount point and monitor
	// directory (<state>/containers), ContainerRWDir the writable layers
	// (<root>/rw: on disk, not in the tmpfs that /run often is).
	ContainerRecordDir string
	ContainerStateDir  string
	ContainerRWDir     string

	// NRI runs the NRI plugins' hooks; nil: none.
	NRI NRI
	// AppArmor is the node's AppArmor (nil: this node's, sandbox/apparmor.Node).
	AppArmor apparmor.Host
	// CDISpecDirs are the directories of CDI specs, in rising priority (nil: CDI
	// devices cannot be resolved).
	CDISpecDirs []string
	// DiskUsageInterval is how often the writable layers are measured for the stats
	// (sandbox/diskusage); 0 is its default, and it is clamped to its bounds.
	DiskUsageInterval time.Duration
}

// Service runs pods. Its methods are safe for concurrent use.
type Service struct {
	cfg   Config
	log   *slog.Logger
	store *store.Store[Metadata, Status]
	names *registrar.Registrar

	ctrStore *store.Store[ContainerMetadata, ContainerStatus]
	ctrNames *registrar.Registrar

	mu   sync.RWMutex // guards pods and ctrs; held only to read or change the maps
	pods map[string]*pod
	ctrs map[string]*container

	// closing is set by Close; creating guards it with the Add of creates, so that no
	// create starts while Close waits.
	creating sync.RWMutex
	closing  bool
	creates  sync.WaitGroup // creates in flight, which Close waits for

	events *broadcaster // container events, for GetContainerEvents

	cdi *cdi.Resolver // nil without CDI spec directories
	// usage holds the writable layers' figures, refreshed in the background until
	// Close calls stopUsage.
	usage     *diskusage.Cache
	stopUsage context.CancelFunc

	// rwTrash and stateTrash take the writable layers and state directories of
	// removed containers; reaper empties them and the stores' trash (reaper.go).
	rwTrash, stateTrash *trash.Bin
	reaper              *reaper
}

// infraOOMScoreAdj is the oom_score_adj pause asks for, as kubelet's pause does.
const infraOOMScoreAdj = -998

// undoTimeout bounds the undo of a failed create and the teardown of recovery.
const undoTimeout = time.Minute

// New loads the pod records, reconciles them with the node (see pod_recover.go) and returns
// the Service, ready to serve.
func New(ctx context.Context, cfg Config) (*Service, error) {
	switch {
	case cfg.RecordDir == "" || cfg.StateDir == "":
		return nil, errors.New("sandbox: record and state directories are required")
	case cfg.Network == nil || cfg.Cgroups == nil:
		return nil, errors.New("sandbox: network and cgroup manager are required")
	case cfg.PauseRootfs == "" || len(cfg.PauseArgs) == 0:
		return nil, errors.New("sandbox: pause rootfs and args are required")
	}
	if _, ok := cfg.Handlers[cfg.DefaultHandler]; !ok {
		return nil, fmt.Errorf("sandbox: default runtime handler %q is not configured", cfg.DefaultHandler)
	}
	if cfg.ShmSize <= 0 {
		cfg.ShmSize = 64 << 20
	}
	if cfg.CreateTimeout <= 0 {
		cfg.CreateTimeout = 4 * time.Minute
	}
	if cfg.OOMScoreAdj == nil {
		cfg.OOMScoreAdj = func(v int) int { return v }
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.NRI == nil {
		cfg.NRI = noNRI{}
	}
	if cfg.AppArmor == nil {
		cfg.AppArmor = &apparmor.Node{}
	}
	st, err := store.Open[Metadata, Status](cfg.RecordDir)
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	if cfg.ContainerRecordDir == "" {
		cfg.ContainerRecordDir = filepath.Join(filepath.Dir(cfg.RecordDir), "containers")
	}
	if cfg.ContainerStateDir == "" {
		cfg.ContainerStateDir = filepath.Join(filepath.Dir(cfg.StateDir), "containers")
	}
	if cfg.ContainerRWDir == "" {
		cfg.ContainerRWDir = filepath.Join(filepath.Dir(cfg.RecordDir), "rw")
	}
	// Pods' and containers' directories hold container files (shm, bundles, root
	// filesystems, writable layers), each 0700. Their parents cannot be listed (0711:
	// the root of a user-namespaced container must pass through to its root filesystem)
	// and the writable layers' is root's alone; also when an older berthd made them
	// with wider modes.
	for dir, mode := range map[string]os.FileMode{cfg.StateDir: 0o711, cfg.ContainerStateDir: 0o711, cfg.ContainerRWDir: 0o700} {
		if err := restrictDir(dir, mode); err != nil {
			return nil, fmt.Errorf("sandbox: %w", err)
		}
	}
	cst, err := store.Open[ContainerMetadata, ContainerStatus](cfg.ContainerRecordDir)
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	rwTrash, err := trash.Open(trash.For(cfg.ContainerRWDir))
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	stateTrash, err := trash.Open(trash.For(cfg.ContainerStateDir))
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	var release func(string) error
	if cfg.Images != nil {
		release = cfg.Images.Release
	}
	s := &Service{
		rwTrash:    rwTrash,
		stateTrash: stateTrash,
		reaper:     newReaper(cfg.Log, release, st.Trash(), cst.Trash(), rwTrash, stateTrash),
		cfg:        cfg,
		log:        cfg.Log,
		store:      st,
		names:      registrar.New(),
		ctrStore:   cst,
		ctrNames:   registrar.New(),
		pods:       map[string]*pod{},
		ctrs:       map[string]*container{},
		events:     newBroadcaster(cfg.Log),
	}
	if len(cfg.CDISpecDirs) > 0 {
		if s.cdi, err = cdi.New(cfg.CDISpecDirs); err != nil {
			return nil, fmt.Errorf("sandbox: %w", err)
		}
	}
	s.recover(ctx)
	s.recoverContainers(ctx)
	s.reaper.start()
	s.usage = diskusage.NewCache(cfg.DiskUsageInterval, s.writableLayers, cfg.Log)
	usageCtx, stop := context.WithCancel(context.Background())
	s.stopUsage = stop
	go s.usage.Run(usageCtx)
	return s, nil
}

// writableLayers maps every container to its writable layer, for the usage cache.
func (s *Service) writableLayers() map[string]string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[string]string, len(s.ctrs))
	for id := range s.ctrs {
		out[id] = s.rwDirOf(id)
	}
	return out
}

// Close waits (at most until ctx ends) for the creates still running past their
// callers' deadlines, so that berthd does not leave them half-made on a clean stop.
// RunPod fails with errdefs.ErrUnavailable from then on.
func (s *Service) Close(ctx context.Context) {
	if s.stopUsage != nil {
		s.stopUsage()
	}
	defer s.reaper.close() // after the creates, whose undo may remove
	s.creating.Lock()
	s.closing = true
	s.creating.Unlock()
	done := make(chan struct{})
	go func() { s.creates.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.log.Warn("stopping with pod creates still running; recovery will undo them")
	}
}

// startCreate runs create on its own goroutine unless the Service is closing.
func (s *Service) startCreate(create func()) error {
	s.creating.RLock()
	defer s.creating.RUnlock()
	if s.closing {
		return fmt.Errorf("berthd is shutting down: %w", errdefs.ErrUnavailable)
	}
	s.creates.Add(1)
	go func() {
		defer s.creates.Done()
		create()
	}()
	return nil
}

// newID returns a 64-hex-digit pod id.
func newID() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// podDir is the pod's volatile directory.
// restrictDir makes dir (and missing parents) with mode, and sets that mode on it if it
// already exists.
func restrictDir(dir string, mode os.FileMode) error {
	if err := os.MkdirAll(dir, mode); err != nil {
		return err
	}
	return os.Chmod(dir, mode)
}

func (s *Service) podDir(id string) string { return filepath.Join(s.cfg.StateDir, id) }

// The entries of a pod's directory.
const (
	nsDir     = "ns"
	bundleDir = "bundle"
)

// get returns the pod whose id is id or, failing that, the one pod whose id starts with
// id. It fails with errdefs.ErrNotFound.
func (s *Service) get(id string) (*pod, error) {
	if id == "" {
		return nil, errdefs.InvalidArgument("pod sandbox id is empty")
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if p, ok := s.pods[id]; ok {
		return p, nil
	}
	var found *pod
	for pid, p := range s.pods {
		if strings.HasPrefix(pid, id) {
			if found != nil {
				return nil, errdefs.NotFound(fmt.Sprintf("pod sandbox id prefix %q is ambiguous", id))
			}
			found = p
		}
	}
	if found == nil {
		return nil, errdefs.NotFound(fmt.Sprintf("pod sandbox %q not found", id))
	}
	return found, nil
}

func (s *Service) add(p *pod) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pods[p.meta.ID] = p
}

func (s *Service) drop(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.pods, id)
}

// record writes st as the pod's next status revision and publishes it to readers.
func (s *Service) record(p *pod, st Status) error {
	var rev uint64 = 1
	if cur := p.status(); cur != nil {
		rev = cur.rev + 1
	}
	if err := s.store.Update(p.meta.ID, rev, st); err != nil {
		return err
	}
	p.cur.Store(&revision{Status: st, rev: rev})
	return nil
}
