package cri

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ContainerService is what the CRI container RPCs need of berth's containers
// (sandbox.Service). It takes and returns CRI types.
type ContainerService interface {
	CreateContainer(ctx context.Context, podID string, config *runtimeapi.ContainerConfig) (string, error)
	StartContainer(ctx context.Context, id string) error
	StopContainer(ctx context.Context, id string, timeout int64) error
	RemoveContainer(ctx context.Context, id string) error
	ContainerStatus(id string, verbose bool) (*runtimeapi.ContainerStatus, map[string]string, error)
	ListContainers(filter *runtimeapi.ContainerFilter) []*runtimeapi.Container
	UpdateContainerResources(ctx context.Context, id string, r *runtimeapi.LinuxContainerResources) error
	ReopenContainerLog(ctx context.Context, id string) error
	ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) (stdout, stderr []byte, code int32, err error)
	ContainerStats(id string) (*runtimeapi.ContainerStats, error)
	ListContainerStats(filter *runtimeapi.ContainerStatsFilter) []*runtimeapi.ContainerStats
}

// containers returns the container service, or Unimplemented when berthd runs without.
func (r *runtimeService) containers() (ContainerService, error) {
	if r.opts.Containers == nil {
		return nil, status.Error(codes.Unimplemented, "containers are not served")
	}
	return r.opts.Containers, nil
}

// CreateContainer creates a container in a pod; the pod config the request carries is
// not needed (berth keeps the pod's own).
func (r *runtimeService) CreateContainer(ctx context.Context, req *runtimeapi.CreateContainerRequest) (*runtimeapi.CreateContainerResponse, error) {
	cs, err := r.containers()
	if err != nil {
		return nil, err
	}
	switch {
	case req.GetPodSandboxId() == "":
		return nil, invalid("CreateContainer: pod_sandbox_id is empty")
	case req.GetConfig().GetMetadata() == nil:
		return nil, invalid("CreateContainer: config with metadata is required")
	}
	id, err := cs.CreateContainer(ctx, req.GetPodSandboxId(), req.GetConfig())
	if err != nil {
		return nil, err
	}
	return &runtimeapi.CreateContainerResponse{ContainerId: id}, nil
}

// StartContainer starts a created container.
func (r *runtimeService) StartContainer(ctx context.Context, req *runtimeapi.StartContainerRequest) (*runtimeapi.StartContainerResponse, error) {
	cs, err := r.containers()
	if err != nil {
		return nil, err
	}
	if req.GetContainerId() == "" {
		return nil, invalid("StartContainer: container_id is empty")
	}
	if err := cs.StartContainer(ctx, req.GetContainerId()); err != nil {
		return nil, err
	}
	return &runtimeapi.StartContainerResponse{}, nil
}

// StopContainer stops a container; stopping an absent or exited one succeeds.
func (r *runtimeService) StopContainer(ctx context.Context, req *runtimeapi.StopContainerRequest) (*runtimeapi.StopContainerResponse, error) {
	cs, err := r.containers()
	if err != nil {
		return nil, err
	}
	if req.GetContainerId() == "" {
		return nil, invalid("StopContainer: container_id is empty")
	}
	if err := cs.StopContainer(ctx, req.GetContainerId(), req.GetTimeout()); err != nil {
		return nil, err
	}
	return &runtimeapi.StopContainerResponse{}, nil
}

// RemoveContainer removes a container; removing an absent one succeeds.
func (r *runtimeService) RemoveContainer(ctx context.Context, req *runtimeapi.RemoveContainerRequest) (*runtimeapi.RemoveContainerResponse, error) {
	cs, err := r.containers()
	if err != nil {
		return nil, err
	}
	if req.GetContainerId() == "" {
		return nil, invalid("RemoveContainer: container_id is empty")
	}
	if err := cs.RemoveContainer(ctx, req.GetContainerId()); err != nil {
		return nil, err
	}
	return &runtimeapi.RemoveContainerResponse{}, nil
}

// ContainerStatus reports a container.
func (r *runtimeService) ContainerStatus(_ context.Context, req *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	cs, err := r.containers()
	if err != nil {
		return nil, err
	}
	if req.GetContainerId() == "" {
		return nil, invalid("ContainerStatus: container_id is empty")
	}
	st, info, err := cs.ContainerStatus(req.GetContainerId(), req.GetVerbose())
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ContainerStatusResponse{Status: st, Info: info}, nil
}

// ListContainers lists the containers matching the filter.
func (r *runtimeService) ListContainers(_ context.Context, req *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	cs, err := r.containers()
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ListContainersResponse{Containers: cs.ListContainers(req.GetFilter())}, nil
}

// StreamContainers is ListContainers in batches.
func (r *runtimeService) StreamContainers(req *runtimeapi.StreamContainersRequest, stream runtimeapi.RuntimeService_StreamContainersServer) error {
	cs, err := r.containers()
	if err != nil {
		return err
	}
	items := cs.ListContainers(req.GetFilter())
	for start := 0; start < len(items); start += streamBatch {
		end := min(start+streamBatch, len(items))
		if err := stream.Send(&runtimeapi.StreamContainersResponse{Containers: items[start:end]}); err != nil {
			return err
		}
	}
	return nil
}

// UpdateContainerResources applies new resources to a container.
func (r *runtimeService) UpdateContainerResources(ctx context.Context, req *runtimeapi.UpdateContainerResourcesRequest) (*runtimeapi.UpdateContainerResourcesResponse, error) {
	cs, err := r.containers()
	if err != nil {
		return nil, err
	}
	if req.GetContainerId() == "" {
		return nil, invalid("UpdateContainerResources: container_id is empty")
	}
	if err := cs.UpdateContainerResources(ctx, req.GetContainerId(), req.GetLinux()); err != nil {
		return nil, err
	}
	return &runtimeapi.UpdateContainerResourcesResponse{}, nil
}

// ReopenContainerLog has the container's monitor reopen its log file.
func (r *runtimeService) ReopenContainerLog(ctx context.Context, req *runtimeapi.ReopenContainerLogRequest) (*runtimeapi.ReopenContainerLogResponse, error) {
	cs, err := r.containers()
	if err != nil {
		return nil, err
	}
	if req.GetContainerId() == "" {
		return nil, invalid("ReopenContainerLog: container_id is empty")
	}
	if err := cs.ReopenContainerLog(ctx, req.GetContainerId()); err != nil {
		return nil, err
	}
	return &runtimeapi.ReopenContainerLogResponse{}, nil
}

// ExecSync runs a command in a container and returns its output and exit code.
func (r *runtimeService) ExecSync(ctx context.Context, req *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
	cs, err := r.containers()
	if err != nil {
		return nil, err
	}
	switch {
	case req.GetContainerId() == "":
		return nil, invalid("ExecSync: container_id is empty")
	case len(req.GetCmd()) == 0:
		return nil, invalid("ExecSync: cmd is empty")
	case req.GetTimeout() < 0:
		return nil, invalid("ExecSync: timeout %d is negative", req.GetTimeout())
	}
	stdout, stderr, code, err := cs.ExecSync(ctx, req.GetContainerId(), req.GetCmd(), time.Duration(req.GetTimeout())*time.Second)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ExecSyncResponse{Stdout: stdout, Stderr: stderr, ExitCode: code}, nil
}

// ContainerStats reports one container's usage.
func (r *runtimeService) ContainerStats(_ context.Context, req *runtimeapi.ContainerStatsRequest) (*runtimeapi.ContainerStatsResponse, error) {
	cs, err := r.containers()
	if err != nil {
		return nil, err
	}
	if req.GetContainerId() == "" {
		return nil, invalid("ContainerStats: container_id is empty")
	}
	st, err := cs.ContainerStats(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ContainerStatsResponse{Stats: st}, nil
}

// ListContainerStats reports the usage of the containers matching the filter.
func (r *runtimeService) ListContainerStats(_ context.Context, req *runtimeapi.ListContainerStatsRequest) (*runtimeapi.ListContainerStatsResponse, error) {
	cs, err := r.containers()
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ListContainerStatsResponse{Stats: cs.ListContainerStats(req.GetFilter())}, nil
}

// StreamContainerStats is ListContainerStats in batches.
func (r *runtimeService) StreamContainerStats(req *runtimeapi.StreamContainerStatsRequest, stream runtimeapi.RuntimeService_StreamContainerStatsServer) error {
	cs, err := r.containers()
	if err != nil {
		return err
	}
	items := cs.ListContainerStats(req.GetFilter())
	for start := 0; start < len(items); start += streamBatch {
		end := min(start+streamBatch, len(items))
		if err := stream.Send(&runtimeapi.StreamContainerStatsResponse{ContainerStats: items[start:end]}); err != nil {
			return err
		}
	}
	return nil
}
