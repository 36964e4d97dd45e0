package cri

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/image"
	"github.com/berth-runtime/berth/internal/errdefs"
)

// fakePods is a stateful in-memory PodService for the handler tests.
type fakePods struct {
	mu   sync.Mutex
	pods map[string]*runtimeapi.PodSandboxStatus
	next int
}

func (f *fakePods) RunPod(_ context.Context, cfg *runtimeapi.PodSandboxConfig, handler string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if handler != "" && handler != "runc" {
		return "", errdefs.InvalidArgument("unknown runtime handler " + handler)
	}
	f.next++
	id := fmt.Sprintf("pod%03d", f.next)
	f.pods[id] = &runtimeapi.PodSandboxStatus{Id: id, Metadata: cfg.Metadata, Labels: cfg.Labels, CreatedAt: 1}
	return id, nil
}

func (f *fakePods) StopPod(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p, ok := f.pods[id]; ok {
		p.State = runtimeapi.PodSandboxState_SANDBOX_NOTREADY
	}
	return nil
}

func (f *fakePods) RemovePod(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.pods, id)
	return nil
}

func (f *fakePods) PodStatus(id string, verbose bool) (*runtimeapi.PodSandboxStatus, map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.pods[id]
	if !ok {
		return nil, nil, errdefs.NotFound("pod sandbox " + id)
	}
	var info map[string]string
	if verbose {
		info = map[string]string{"info": `{"pid":1}`}
	}
	return p, info, nil
}

func (f *fakePods) ListPods(filter *runtimeapi.PodSandboxFilter) []*runtimeapi.PodSandbox {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*runtimeapi.PodSandbox
	for id, p := range f.pods {
		if filter.GetId() != "" && filter.GetId() != id {
			continue
		}
		out = append(out, &runtimeapi.PodSandbox{Id: id, Metadata: p.Metadata, State: p.State, Labels: p.Labels})
	}
	return out
}

func (f *fakePods) UpdatePodResources(_ context.Context, id string, _, _ *runtimeapi.LinuxContainerResources) error {
	if _, _, err := f.PodStatus(id, false); err != nil {
		return err
	}
	return nil
}

func podsServer(t *testing.T) (clients, *fakePods) {
	pods := &fakePods{pods: map[string]*runtimeapi.PodSandboxStatus{}}
	return startServer(t, Options{Images: &fakeImages{images: map[string]image.Image{}}, Pods: pods}, true), pods
}

func podConfig(name string) *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "ns", Uid: "u"}}
}

func TestPodHandlers(t *testing.T) {
	c, _ := podsServer(t)
	ctx := context.Background()
	run, err := c.runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: podConfig("a")})
	if err != nil {
		t.Fatal(err)
	}
	id := run.PodSandboxId
	st, err := c.runtime.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id, Verbose: true})
	if err != nil || st.Status.Id != id || st.Info["info"] == "" || st.Timestamp == 0 {
		t.Fatalf("PodSandboxStatus = %v, %v", st, err)
	}
	if _, err := c.runtime.UpdatePodSandboxResources(ctx, &runtimeapi.UpdatePodSandboxResourcesRequest{PodSandboxId: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
		t.Fatal(err)
	}
	list, err := c.runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{Id: id}})
	if err != nil || len(list.Items) != 1 || list.Items[0].State != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
		t.Fatalf("ListPodSandbox = %v, %v", list, err)
	}
	if _, err := c.runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
		t.Fatal(err)
	}
	_, err = c.runtime.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("status of a removed pod: %v, want NotFound", err)
	}
}

func TestPodHandlerErrors(t *testing.T) {
	c, _ := podsServer(t)
	ctx := context.Background()
	tests := []struct {
		name string
		call func() error
		want codes.Code
	}{
		{"run without config", func() error {
			_, err := c.runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{})
			return err
		}, codes.InvalidArgument},
		{"run without metadata", func() error {
			_, err := c.runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{}})
			return err
		}, codes.InvalidArgument},
		{"run with an unknown handler", func() error {
			_, err := c.runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: podConfig("x"), RuntimeHandler: "nope"})
			return err
		}, codes.InvalidArgument},
		{"stop without id", func() error {
			_, err := c.runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{})
			return err
		}, codes.InvalidArgument},
		{"remove without id", func() error {
			_, err := c.runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{})
			return err
		}, codes.InvalidArgument},
		{"status without id", func() error {
			_, err := c.runtime.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{})
			return err
		}, codes.InvalidArgument},
		{"update of an absent pod", func() error {
			_, err := c.runtime.UpdatePodSandboxResources(ctx, &runtimeapi.UpdatePodSandboxResourcesRequest{PodSandboxId: "nope"})
			return err
		}, codes.NotFound},
		{"stop of an absent pod", func() error {
			_, err := c.runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: "nope"})
			return err
		}, codes.OK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := status.Code(tc.call()); got != tc.want {
				t.Fatalf("code %v, want %v", got, tc.want)
			}
		})
	}
}

func TestStreamPodSandboxesBatches(t *testing.T) {
	c, pods := podsServer(t)
	ctx := context.Background()
	const n = 2*streamBatch + 7
	for i := range n {
		if _, err := pods.RunPod(ctx, podConfig(fmt.Sprint(i)), ""); err != nil {
			t.Fatal(err)
		}
	}
	stream, err := c.runtime.StreamPodSandboxes(ctx, &runtimeapi.StreamPodSandboxesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var sizes []string
	total := 0
	for {
		msg, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, fmt.Sprint(len(msg.PodSandboxes)))
		total += len(msg.PodSandboxes)
	}
	if total != n || strings.Join(sizes, ",") != fmt.Sprintf("%d,%d,7", streamBatch, streamBatch) {
		t.Fatalf("batches %v (total %d), want %d,%d,7", sizes, total, streamBatch, streamBatch)
	}
}
