package cri

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TelemetryService is what the CRI pod stats and container event RPCs need of berth's
// pods (sandbox.Service).
type TelemetryService interface {
	PodSandboxStats(id string) (*runtimeapi.PodSandboxStats, error)
	ListPodSandboxStats(filter *runtimeapi.PodSandboxStatsFilter) []*runtimeapi.PodSandboxStats
	// ContainerEvents returns the events from now on; the channel closes when ctx ends
	// or when the caller fell too far behind.
	ContainerEvents(ctx context.Context) <-chan *runtimeapi.ContainerEventResponse
}

// telemetry returns the telemetry service, or Unimplemented when berthd runs without.
func (r *runtimeService) telemetry() (TelemetryService, error) {
	if r.opts.Telemetry == nil {
		return nil, status.Error(codes.Unimplemented, "pod stats and container events are not served")
	}
	return r.opts.Telemetry, nil
}

// PodSandboxStats reports one pod's usage.
func (r *runtimeService) PodSandboxStats(_ context.Context, req *runtimeapi.PodSandboxStatsRequest) (*runtimeapi.PodSandboxStatsResponse, error) {
	ts, err := r.telemetry()
	if err != nil {
		return nil, err
	}
	if req.GetPodSandboxId() == "" {
		return nil, invalid("PodSandboxStats: pod_sandbox_id is empty")
	}
	st, err := ts.PodSandboxStats(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	return &runtimeapi.PodSandboxStatsResponse{Stats: st}, nil
}

// ListPodSandboxStats reports the usage of the pods matching the filter.
func (r *runtimeService) ListPodSandboxStats(_ context.Context, req *runtimeapi.ListPodSandboxStatsRequest) (*runtimeapi.ListPodSandboxStatsResponse, error) {
	ts, err := r.telemetry()
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ListPodSandboxStatsResponse{Stats: ts.ListPodSandboxStats(req.GetFilter())}, nil
}

// StreamPodSandboxStats is ListPodSandboxStats in batches.
func (r *runtimeService) StreamPodSandboxStats(req *runtimeapi.StreamPodSandboxStatsRequest, stream runtimeapi.RuntimeService_StreamPodSandboxStatsServer) error {
	ts, err := r.telemetry()
	if err != nil {
		return err
	}
	items := ts.ListPodSandboxStats(req.GetFilter())
	for start := 0; start < len(items); start += streamBatch {
		end := min(start+streamBatch, len(items))
		if err := stream.Send(&runtimeapi.StreamPodSandboxStatsResponse{PodSandboxStats: items[start:end]}); err != nil {
			return err
		}
	}
	return nil
}

// GetContainerEvents streams container events until the client goes, berthd stops, or
// the client falls so far behind that berth drops it; then the stream ends with
// Unavailable, so that kubelet reconnects and relists instead of trusting a gap. The
// response headers are sent once the subscription is in place.
func (r *runtimeService) GetContainerEvents(_ *runtimeapi.GetEventsRequest, stream runtimeapi.RuntimeService_GetContainerEventsServer) error {
	ts, err := r.telemetry()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel() // unsubscribes
	events := ts.ContainerEvents(ctx)
	// The headers tell the client it is subscribed: what happens from then on reaches it.
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil // the client went: nothing to tell it
		case <-r.opts.stopping:
			// GracefulStop waits for every stream: this one would otherwise hold
			// berthd's shutdown for its whole grace.
			return status.Error(codes.Unavailable, "berthd is stopping")
		case ev, ok := <-events:
			if !ok {
				return status.Error(codes.Unavailable, "container events: the client fell too far behind; relist")
			}
			if err := stream.Send(ev); err != nil {
				return err
			}
		}
	}
}
