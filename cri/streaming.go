package cri

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// StreamingService hands out the URLs of streaming sessions (cri/stream.Server). Each
// URL carries a single-use token; the session itself runs over HTTP, not gRPC.
type StreamingService interface {
	GetExec(*runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error)
	GetAttach(*runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error)
	GetPortForward(*runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error)
}

// streaming returns the streaming service, or Unimplemented when berthd runs without.
func (r *runtimeService) streaming() (StreamingService, error) {
	if r.opts.Streaming == nil {
		return nil, status.Error(codes.Unimplemented, "streaming is not served")
	}
	return r.opts.Streaming, nil
}

// Exec returns the URL of an exec session in a running container.
func (r *runtimeService) Exec(_ context.Context, req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	ss, err := r.streaming()
	if err != nil {
		return nil, err
	}
	if err := validateExec(req); err != nil {
		return nil, err
	}
	id, err := r.runningContainer(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	return ss.GetExec(&runtimeapi.ExecRequest{
		ContainerId: id, Cmd: req.GetCmd(), Tty: req.GetTty(),
		Stdin: req.GetStdin(), Stdout: req.GetStdout(), Stderr: req.GetStderr(),
	})
}

// Attach returns the URL of a session on a running container's own stdio.
func (r *runtimeService) Attach(_ context.Context, req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	ss, err := r.streaming()
	if err != nil {
		return nil, err
	}
	if err := validateStreams("Attach", req.GetContainerId(), req.GetTty(), req.GetStdin(), req.GetStdout(), req.GetStderr()); err != nil {
		return nil, err
	}
	id, err := r.runningContainer(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	return ss.GetAttach(&runtimeapi.AttachRequest{
		ContainerId: id, Tty: req.GetTty(),
		Stdin: req.GetStdin(), Stdout: req.GetStdout(), Stderr: req.GetStderr(),
	})
}

// PortForward returns the URL of a port-forward session into a ready pod. The ports
// are chosen by the client during the session; the request's are not used.
func (r *runtimeService) PortForward(_ context.Context, req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	ss, err := r.streaming()
	if err != nil {
		return nil, err
	}
	if req.GetPodSandboxId() == "" {
		return nil, invalid("PortForward: pod_sandbox_id is empty")
	}
	pods, err := r.pods()
	if err != nil {
		return nil, err
	}
	st, _, err := pods.PodStatus(req.GetPodSandboxId(), false)
	if err != nil {
		return nil, err
	}
	if st.GetState() != runtimeapi.PodSandboxState_SANDBOX_READY {
		return nil, status.Errorf(codes.FailedPrecondition, "pod sandbox %s is not ready", st.GetId())
	}
	return ss.GetPortForward(&runtimeapi.PortForwardRequest{PodSandboxId: st.GetId(), Port: req.GetPort()})
}

// validateExec checks an ExecRequest before a URL is handed out for it: a session that
// could not run must fail here, where kubelet sees a gRPC code, not at connect time.
func validateExec(req *runtimeapi.ExecRequest) error {
	if err := validateStreams("Exec", req.GetContainerId(), req.GetTty(), req.GetStdin(), req.GetStdout(), req.GetStderr()); err != nil {
		return err
	}
	if len(req.GetCmd()) == 0 {
		return invalid("Exec: cmd is empty")
	}
	return nil
}

// validateStreams applies kubelet's rules for a session's streams: at least one, and no
// stderr with a terminal (a terminal has a single output, which is stdout).
func validateStreams(rpc, id string, tty, stdin, stdout, stderr bool) error {
	switch {
	case id == "":
		return invalid("%s: container_id is empty", rpc)
	case !stdin && !stdout && !stderr:
		return invalid("%s: one of stdin, stdout and stderr must be set", rpc)
	case tty && stderr:
		return invalid("%s: tty and stderr cannot both be set", rpc)
	}
	return nil
}

// runningContainer resolves id (or an id prefix) to the full id of a running
// container: NotFound when there is none, FailedPrecondition when it does not run.
func (r *runtimeService) runningContainer(id string) (string, error) {
	cs, err := r.containers()
	if err != nil {
		return "", err
	}
	st, _, err := cs.ContainerStatus(id, false)
	if err != nil {
		return "", err
	}
	if st.GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING {
		return "", status.Errorf(codes.FailedPrecondition, "container %s is %s, not running",
			st.GetId(), st.GetState())
	}
	return st.GetId(), nil
}
