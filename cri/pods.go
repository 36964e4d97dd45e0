package cri

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// pods returns the pod service, or Unimplemented when berthd runs without one.
func (r *runtimeService) pods() (PodService, error) {
	if r.opts.Pods == nil {
		return nil, status.Error(codes.Unimplemented, "pod sandboxes are not served")
	}
	return r.opts.Pods, nil
}

// RunPodSandbox creates and starts a pod.
func (r *runtimeService) RunPodSandbox(ctx context.Context, req *runtimeapi.RunPodSandboxRequest) (*runtimeapi.RunPodSandboxResponse, error) {
	pods, err := r.pods()
	if err != nil {
		return nil, err
	}
	if req.GetConfig().GetMetadata() == nil {
		return nil, invalid("RunPodSandbox: config with metadata is required")
	}
	id, err := pods.RunPod(ctx, req.GetConfig(), req.GetRuntimeHandler())
	if err != nil {
		return nil, err
	}
	return &runtimeapi.RunPodSandboxResponse{PodSandboxId: id}, nil
}

// StopPodSandbox stops a pod; stopping an absent or stopped pod succeeds.
func (r *runtimeService) StopPodSandbox(ctx context.Context, req *runtimeapi.StopPodSandboxRequest) (*runtimeapi.StopPodSandboxResponse, error) {
	pods, err := r.pods()
	if err != nil {
		return nil, err
	}
	if req.GetPodSandboxId() == "" {
		return nil, invalid("StopPodSandbox: pod_sandbox_id is empty")
	}
	if err := pods.StopPod(ctx, req.GetPodSandboxId()); err != nil {
		return nil, err
	}
	return &runtimeapi.StopPodSandboxResponse{}, nil
}

// RemovePodSandbox removes a pod; removing an absent pod succeeds.
func (r *runtimeService) RemovePodSandbox(ctx context.Context, req *runtimeapi.RemovePodSandboxRequest) (*runtimeapi.RemovePodSandboxResponse, error) {
	pods, err := r.pods()
	if err != nil {
		return nil, err
	}
	if req.GetPodSandboxId() == "" {
		return nil, invalid("RemovePodSandbox: pod_sandbox_id is empty")
	}
	if err := pods.RemovePod(ctx, req.GetPodSandboxId()); err != nil {
		return nil, err
	}
	return &runtimeapi.RemovePodSandboxResponse{}, nil
}

// PodSandboxStatus reports a pod.
func (r *runtimeService) PodSandboxStatus(_ context.Context, req *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	pods, err := r.pods()
	if err != nil {
		return nil, err
	}
	if req.GetPodSandboxId() == "" {
		return nil, invalid("PodSandboxStatus: pod_sandbox_id is empty")
	}
	st, info, err := pods.PodStatus(req.GetPodSandboxId(), req.GetVerbose())
	if err != nil {
		return nil, err
	}
	return &runtimeapi.PodSandboxStatusResponse{Status: st, Info: info, Timestamp: time.Now().UnixNano()}, nil
}

// ListPodSandbox lists the pods matching the filter.
func (r *runtimeService) ListPodSandbox(_ context.Context, req *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	pods, err := r.pods()
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ListPodSandboxResponse{Items: pods.ListPods(req.GetFilter())}, nil
}

// StreamPodSandboxes is ListPodSandbox in batches, for nodes with more pods than one
// message holds.
func (r *runtimeService) StreamPodSandboxes(req *runtimeapi.StreamPodSandboxesRequest, stream runtimeapi.RuntimeService_StreamPodSandboxesServer) error {
	pods, err := r.pods()
	if err != nil {
		return err
	}
	items := pods.ListPods(req.GetFilter())
	for start := 0; start < len(items); start += streamBatch {
		end := min(start+streamBatch, len(items))
		if err := stream.Send(&runtimeapi.StreamPodSandboxesResponse{PodSandboxes: items[start:end]}); err != nil {
			return err
		}
	}
	return nil
}

// UpdatePodSandboxResources records (and applies to the pod cgroup) a pod's resources.
func (r *runtimeService) UpdatePodSandboxResources(ctx context.Context, req *runtimeapi.UpdatePodSandboxResourcesRequest) (*runtimeapi.UpdatePodSandboxResourcesResponse, error) {
	pods, err := r.pods()
	if err != nil {
		return nil, err
	}
	if req.GetPodSandboxId() == "" {
		return nil, invalid("UpdatePodSandboxResources: pod_sandbox_id is empty")
	}
	if err := pods.UpdatePodResources(ctx, req.GetPodSandboxId(), req.GetOverhead(), req.GetResources()); err != nil {
		return nil, err
	}
	return &runtimeapi.UpdatePodSandboxResourcesResponse{}, nil
}
