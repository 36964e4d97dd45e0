package cri

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/image"
	"github.com/berth-runtime/berth/internal/errdefs"
)

// statusOnlyContainers answers ContainerStatus from a fixed table; the streaming
// handlers use nothing else of the ContainerService (the embedded nil interface
// panics if they ever do).
type statusOnlyContainers struct {
	ContainerService
	states map[string]runtimeapi.ContainerState
}

func (f statusOnlyContainers) ContainerStatus(id string, _ bool) (*runtimeapi.ContainerStatus, map[string]string, error) {
	st, ok := f.states[id]
	if !ok {
		return nil, nil, errdefs.NotFound("container " + id)
	}
	return &runtimeapi.ContainerStatus{Id: id + "-full", State: st}, nil, nil
}

// fakeStreaming records what it was asked for and hands out fixed URLs.
type fakeStreaming struct{ exec, attach, pf string }

func (f *fakeStreaming) GetExec(r *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	f.exec = r.ContainerId
	return &runtimeapi.ExecResponse{Url: "http://127.0.0.1:1/exec/t"}, nil
}

func (f *fakeStreaming) GetAttach(r *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	f.attach = r.ContainerId
	return &runtimeapi.AttachResponse{Url: "http://127.0.0.1:1/attach/t"}, nil
}

func (f *fakeStreaming) GetPortForward(r *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	f.pf = r.PodSandboxId
	return &runtimeapi.PortForwardResponse{Url: "http://127.0.0.1:1/portforward/t"}, nil
}

func streamingServer(t *testing.T) (clients, *fakeStreaming) {
	ss := &fakeStreaming{}
	pods := &fakePods{pods: map[string]*runtimeapi.PodSandboxStatus{
		"ready":    {Id: "ready", State: runtimeapi.PodSandboxState_SANDBOX_READY},
		"notready": {Id: "notready", State: runtimeapi.PodSandboxState_SANDBOX_NOTREADY},
	}}
	ctrs := statusOnlyContainers{states: map[string]runtimeapi.ContainerState{
		"run":     runtimeapi.ContainerState_CONTAINER_RUNNING,
		"created": runtimeapi.ContainerState_CONTAINER_CREATED,
		"exited":  runtimeapi.ContainerState_CONTAINER_EXITED,
	}}
	opts := Options{Images: &fakeImages{images: map[string]image.Image{}}, Pods: pods, Containers: ctrs, Streaming: ss}
	return startServer(t, opts, true), ss
}

func TestExecValidation(t *testing.T) {
	c, ss := streamingServer(t)
	echo := []string{"echo", "hi"}
	tests := []struct {
		name string
		req  *runtimeapi.ExecRequest
		want codes.Code
	}{
		{"ok", &runtimeapi.ExecRequest{ContainerId: "run", Cmd: echo, Stdout: true}, codes.OK},
		{"tty with stdin", &runtimeapi.ExecRequest{ContainerId: "run", Cmd: echo, Tty: true, Stdin: true, Stdout: true}, codes.OK},
		{"no container id", &runtimeapi.ExecRequest{Cmd: echo, Stdout: true}, codes.InvalidArgument},
		{"no cmd", &runtimeapi.ExecRequest{ContainerId: "run", Stdout: true}, codes.InvalidArgument},
		{"no stream", &runtimeapi.ExecRequest{ContainerId: "run", Cmd: echo}, codes.InvalidArgument},
		{"tty with stderr", &runtimeapi.ExecRequest{ContainerId: "run", Cmd: echo, Tty: true, Stdout: true, Stderr: true}, codes.InvalidArgument},
		{"absent container", &runtimeapi.ExecRequest{ContainerId: "nope", Cmd: echo, Stdout: true}, codes.NotFound},
		{"created container", &runtimeapi.ExecRequest{ContainerId: "created", Cmd: echo, Stdout: true}, codes.FailedPrecondition},
		{"exited container", &runtimeapi.ExecRequest{ContainerId: "exited", Cmd: echo, Stdout: true}, codes.FailedPrecondition},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := c.runtime.Exec(context.Background(), tc.req)
			if got := status.Code(err); got != tc.want {
				t.Fatalf("code %v (%v), want %v", got, err, tc.want)
			}
			if err == nil && (resp.Url == "" || ss.exec != "run-full") {
				t.Fatalf("url %q, streaming asked for %q, want the resolved id run-full", resp.Url, ss.exec)
			}
		})
	}
}

func TestAttachValidation(t *testing.T) {
	c, ss := streamingServer(t)
	tests := []struct {
		name string
		req  *runtimeapi.AttachRequest
		want codes.Code
	}{
		{"ok", &runtimeapi.AttachRequest{ContainerId: "run", Stdin: true, Stdout: true, Stderr: true}, codes.OK},
		{"no container id", &runtimeapi.AttachRequest{Stdout: true}, codes.InvalidArgument},
		{"no stream", &runtimeapi.AttachRequest{ContainerId: "run"}, codes.InvalidArgument},
		{"tty with stderr", &runtimeapi.AttachRequest{ContainerId: "run", Tty: true, Stderr: true}, codes.InvalidArgument},
		{"absent container", &runtimeapi.AttachRequest{ContainerId: "nope", Stdout: true}, codes.NotFound},
		{"exited container", &runtimeapi.AttachRequest{ContainerId: "exited", Stdout: true}, codes.FailedPrecondition},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.runtime.Attach(context.Background(), tc.req)
			if got := status.Code(err); got != tc.want {
				t.Fatalf("code %v (%v), want %v", got, err, tc.want)
			}
			if err == nil && ss.attach != "run-full" {
				t.Fatalf("streaming asked for %q, want run-full", ss.attach)
			}
		})
	}
}

func TestPortForwardValidation(t *testing.T) {
	c, ss := streamingServer(t)
	tests := []struct {
		name string
		pod  string
		want codes.Code
	}{
		{"ready pod", "ready", codes.OK},
		{"no pod id", "", codes.InvalidArgument},
		{"absent pod", "nope", codes.NotFound},
		{"pod not ready", "notready", codes.FailedPrecondition},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.runtime.PortForward(context.Background(), &runtimeapi.PortForwardRequest{PodSandboxId: tc.pod})
			if got := status.Code(err); got != tc.want {
				t.Fatalf("code %v (%v), want %v", got, err, tc.want)
			}
			if err == nil && ss.pf != tc.pod {
				t.Fatalf("streaming asked for %q, want %q", ss.pf, tc.pod)
			}
		})
	}
}

func TestStreamingUnimplemented(t *testing.T) {
	c := startServer(t, Options{Images: &fakeImages{images: map[string]image.Image{}}}, true)
	ctx := context.Background()
	calls := map[string]func() error{
		"exec": func() error {
			_, err := c.runtime.Exec(ctx, &runtimeapi.ExecRequest{ContainerId: "x", Cmd: []string{"a"}, Stdout: true})
			return err
		},
		"attach": func() error {
			_, err := c.runtime.Attach(ctx, &runtimeapi.AttachRequest{ContainerId: "x", Stdout: true})
			return err
		},
		"portforward": func() error {
			_, err := c.runtime.PortForward(ctx, &runtimeapi.PortForwardRequest{PodSandboxId: "x"})
			return err
		},
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			if got := status.Code(call()); got != codes.Unimplemented {
				t.Fatalf("code %v, want Unimplemented", got)
			}
		})
	}
}
