package cri

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/image"
)

// ImageService is what the CRI image RPCs need of berth's image service.
type ImageService interface {
	Pull(ctx context.Context, ref string, auth *image.AuthConfig) (image.Image, error)
	Get(ref string) (image.Image, error)
	List(filterRef string) []image.Image
	Remove(ctx context.Context, ref string) error
	Usage() image.Usage
}

// PodService is what the CRI pod RPCs need of berth's pods (sandbox.Service). It takes
// and returns CRI types: they are the contract of the domain too.
type PodService interface {
	RunPod(ctx context.Context, config *runtimeapi.PodSandboxConfig, handler string) (string, error)
	StopPod(ctx context.Context, id string) error
	RemovePod(ctx context.Context, id string) error
	PodStatus(id string, verbose bool) (*runtimeapi.PodSandboxStatus, map[string]string, error)
	ListPods(filter *runtimeapi.PodSandboxFilter) []*runtimeapi.PodSandbox
	UpdatePodResources(ctx context.Context, id string, overhead, resources *runtimeapi.LinuxContainerResources) error
}

// ContainerFsService is what ImageFsInfo needs of berth's containers (sandbox.Service):
// the usage of the filesystem holding their writable layers, from cached figures.
type ContainerFsService interface {
	ContainerFsUsage() *runtimeapi.FilesystemUsage
}

// RuntimeHandler is one OCI runtime as the CRI Status RPC reports it.
type RuntimeHandler struct {
	Name                    string
	RecursiveReadOnlyMounts bool
	UserNamespaces          bool
}

// Options wires the server to the domain services.
type Options struct {
	Log *slog.Logger
	// Images serves the ImageService.
	Images ImageService
	// Pods serves the pod sandbox RPCs; nil answers them Unimplemented.
	Pods PodService
	// Containers serves the container RPCs; nil answers them Unimplemented.
	Containers ContainerService
	// Streaming serves Exec, Attach and PortForward; nil answers them Unimplemented.
	Streaming StreamingService
	// Telemetry serves pod stats and container events; nil answers them Unimplemented.
	Telemetry TelemetryService
	// Metrics serves the CRI pod sandbox metrics; nil answers them Unimplemented.
	Metrics MetricsService
	// ContainerFs reports the containers' writable layers for ImageFsInfo's
	// container_filesystems; nil reports none (kubelet then counts them on the image
	// filesystem).
	ContainerFs ContainerFsService
	// Handlers are the configured OCI runtimes; DefaultHandler is the one used when a
	// pod names none.
	Handlers       []RuntimeHandler
	DefaultHandler string
	// CgroupDriver is "cgroupfs" or "systemd".
	CgroupDriver string
	// RuntimeReady and NetworkReady return nil when the runtime and the pod network can
	// take work, else the reason they cannot.
	RuntimeReady func() error
	NetworkReady func() error
	// SetPodCIDR takes kubelet's pod CIDR (UpdateRuntimeConfig) for the pod network;
	// nil logs it only.
	SetPodCIDR func(cidrs string) error
	// EffectiveConfig is reported, as JSON, by a verbose Status call.
	EffectiveConfig any
	// MaxMessageSize bounds gRPC messages both ways (kubelet uses 16 MiB).
	MaxMessageSize int

	stopping chan struct{} // set by New, closed by Stop: ends the event streams
}

// Server is berth's CRI gRPC server.
type Server struct {
	grpc     *grpc.Server
	gate     *gate
	stopping chan struct{}
	stopOnce sync.Once
}

// New builds the server with both CRI services registered. It serves nothing until
// Serve, and answers Unavailable to everything but Version until Ready.
func New(opts Options) *Server {
	if opts.MaxMessageSize == 0 {
		opts.MaxMessageSize = 16 << 20
	}
	g := &gate{}
	opts.stopping = make(chan struct{})
	ic := &interceptors{log: opts.Log, gate: g}
	s := grpc.NewServer(
		grpc.ChainUnaryInterceptor(ic.unary),
		grpc.ChainStreamInterceptor(ic.stream),
		grpc.MaxRecvMsgSize(opts.MaxMessageSize),
		grpc.MaxSendMsgSize(opts.MaxMessageSize),
	)
	runtimeapi.RegisterRuntimeServiceServer(s, &runtimeService{opts: opts})
	runtimeapi.RegisterImageServiceServer(s, &imageService{images: opts.Images, containerFs: opts.ContainerFs, log: opts.Log})
	return &Server{grpc: s, gate: g, stopping: opts.stopping}
}

// Serve accepts connections on l until Stop.
func (s *Server) Serve(l net.Listener) error { return s.grpc.Serve(l) }

// Ready opens the startup gate.
func (s *Server) Ready() { s.gate.open.Store(true) }

// Stop lets calls in flight finish for up to grace, then cuts the rest.
func (s *Server) Stop(grace time.Duration) {
	s.stopOnce.Do(func() { close(s.stopping) })
	done := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(grace):
		s.grpc.Stop()
	}
}
