package cri

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// MetricsService is what the CRI metrics RPCs need of berth's pods (sandbox.Service):
// the cadvisor-style metrics kubelet serves on /metrics/cadvisor when it takes them
// from the runtime.
type MetricsService interface {
	MetricDescriptors() []*runtimeapi.MetricDescriptor
	ListPodSandboxMetrics() []*runtimeapi.PodSandboxMetrics
}

// metricsBatch is how many pods one StreamPodSandboxMetrics message carries: a pod's
// metrics are a few dozen series per container, so fewer than images per message.
const metricsBatch = 10

// metrics returns the metrics service, or Unimplemented when berthd runs without:
// kubelet then keeps reading cadvisor.
func (r *runtimeService) metrics() (MetricsService, error) {
	if r.opts.Metrics == nil {
		return nil, status.Error(codes.Unimplemented, "pod sandbox metrics are not served")
	}
	return r.opts.Metrics, nil
}

// ListMetricDescriptors describes the metrics ListPodSandboxMetrics reports.
func (r *runtimeService) ListMetricDescriptors(context.Context, *runtimeapi.ListMetricDescriptorsRequest) (*runtimeapi.ListMetricDescriptorsResponse, error) {
	ms, err := r.metrics()
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ListMetricDescriptorsResponse{Descriptors: ms.MetricDescriptors()}, nil
}

// ListPodSandboxMetrics reports the metrics of the ready pods and their running containers.
func (r *runtimeService) ListPodSandboxMetrics(context.Context, *runtimeapi.ListPodSandboxMetricsRequest) (*runtimeapi.ListPodSandboxMetricsResponse, error) {
	ms, err := r.metrics()
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ListPodSandboxMetricsResponse{PodMetrics: ms.ListPodSandboxMetrics()}, nil
}

// StreamPodSandboxMetrics is ListPodSandboxMetrics in batches.
func (r *runtimeService) StreamPodSandboxMetrics(_ *runtimeapi.StreamPodSandboxMetricsRequest, stream runtimeapi.RuntimeService_StreamPodSandboxMetricsServer) error {
	ms, err := r.metrics()
	if err != nil {
		return err
	}
	items := ms.ListPodSandboxMetrics()
	for start := 0; start < len(items); start += metricsBatch {
		end := min(start+metricsBatch, len(items))
		if err := stream.Send(&runtimeapi.StreamPodSandboxMetricsResponse{PodSandboxMetrics: items[start:end]}); err != nil {
			return err
		}
	}
	return nil
}
