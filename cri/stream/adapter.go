package stream

import (
	"context"
	"errors"
	"io"

	remotecommand "k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"

	"github.com/berth-runtime/berth/sandbox"
)

// adapter is the library's streaming.Runtime over ours (New passing it to
// streaming.NewServer checks that it is one).
type adapter struct{ rt Runtime }

func (a *adapter) Exec(ctx context.Context, id string, cmd []string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	err := a.rt.ExecStream(ctx, id, cmd, in, out, errw, tty, convertResize(ctx, resize))
	return exitError(err)
}

func (a *adapter) Attach(ctx context.Context, id string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	return a.rt.Attach(ctx, id, in, out, errw, tty, convertResize(ctx, resize))
}

func (a *adapter) PortForward(ctx context.Context, podID string, port int32, stream io.ReadWriteCloser) error {
	return a.rt.PortForward(ctx, podID, port, stream)
}

// exitError turns sandbox's report of a non-zero exit into the error type the
// library's exec handler recognises (it sends the client the code, and the client,
// kubectl or crictl, exits with it); any other error stays a failure of the session.
func exitError(err error) error {
	var ee *sandbox.ExitError
	if errors.As(err, &ee) {
		return utilexec.CodeExitError{Err: err, Code: ee.Code}
	}
	return err
}

// convertResize forwards the library's resize events as sandbox's until in closes or
// ctx ends. nil stays nil: the session has no resize stream.
func convertResize(ctx context.Context, in <-chan remotecommand.TerminalSize) <-chan sandbox.TerminalSize {
	if in == nil {
		return nil
	}
	out := make(chan sandbox.TerminalSize)
	go func() {
		defer close(out)
		for {
			select {
			case sz, ok := <-in:
				if !ok {
					return
				}
				select {
				case out <- sandbox.TerminalSize{Width: sz.Width, Height: sz.Height}:
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}
