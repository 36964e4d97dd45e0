package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/nspin"
	"github.com/berth-runtime/berth/sandbox/monitor"
	"github.com/berth-runtime/berth/sandbox/runtime"
)

// TerminalSize is a terminal's size in characters, as a streaming client resizes it.
// It is the monitor's own type, so that resize events reach the monitor's session as
// they come, with no copy on the way.
type TerminalSize = monitor.Size

// ExitError is how ExecStream reports a command that ran and exited non-zero: the
// streaming layer turns it into the exit code the client sees, not into a failure.
type ExitError struct{ Code int }

func (e *ExitError) Error() string { return "command exited with code " + strconv.Itoa(e.Code) }

// ExecStream runs cmd in running container id with the caller's streams, for the CRI
// Exec RPC's streaming session. A nil stdin gives the process /dev/null; with tty, all
// output goes to stdout. A non-zero exit is an *ExitError. Resize events are drained
// (the runtime's exec has no way to pass them on yet), so a sender never blocks.
func (s *Service) ExecStream(ctx context.Context, id string, cmd []string, stdin io.Reader, stdout, stderr io.WriteCloser, tty bool, resize <-chan TerminalSize) error {
	if len(cmd) == 0 {
		return errdefs.InvalidArgument("exec command is empty")
	}
	c, err := s.getContainer(id)
	if err != nil {
		return err
	}
	rt, err := s.running(c)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go drainResize(ctx, resize)

	o := runtime.ExecOptions{Args: cmd, Stdout: stdout, Tty: tty}
	if !tty { // a terminal has one output, and it is stdout
		o.Stderr = stderr
	}
	if stdin != nil {
		// The runtime gets a pipe of ours, not the client's reader: os/exec would wait
		// for its copy of a reader that the client may never close, and an exec that
		// exited would hang on its stdin. The copy below ends when the session does.
		r, w, err := os.Pipe()
		if err != nil {
			return err
		}
		defer r.Close()
		defer w.Close()
		go func() {
			_, _ = io.Copy(w, stdin)
			_ = w.Close() // the client's end of stdin is the process's EOF
		}()
		o.Stdin = r
	}
	code, err := rt.Exec(ctx, c.meta.ID, o)
	if err != nil {
		return fmt.Errorf("exec in container %s: %w", c.meta.ID, err)
	}
	if code != 0 {
		return &ExitError{Code: int(code)}
	}
	return nil
}

// Attach connects the caller's streams to running container id's stdio through its
// monitor, until the container exits, ctx ends, or (StdinOnce) stdin ends. The
// container's own config decides what it has: stdin is ignored when it was created
// without Stdin, and with its terminal (Tty) all output is stdout, whatever tty the
// client asked for, as kubelet sends the container's setting anyway.
func (s *Service) Attach(ctx context.Context, id string, stdin io.Reader, stdout, stderr io.WriteCloser, _ bool, resize <-chan TerminalSize) error {
	c, err := s.getContainer(id)
	if err != nil {
		return err
	}
	if _, err := s.running(c); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st := monitor.Streams{Stdout: stdout}
	if c.config.GetStdin() {
		st.Stdin = stdin
	}
	if !c.config.GetTty() {
		st.Stderr = stderr
	}
	st.Resize = resize
	if err := monitor.Attach(ctx, s.monitorOf(c.meta.ID), st); err != nil {
		return fmt.Errorf("attach to container %s: %w", c.meta.ID, err)
	}
	return nil
}

// PortForward copies stream to and from port on the pod's loopback until either side
// closes. The connection is made inside the pod's network namespace; a host-network
// pod's loopback is the node's.
func (s *Service) PortForward(ctx context.Context, podID string, port int32, stream io.ReadWriteCloser) error {
	if port <= 0 || port > 65535 {
		return errdefs.InvalidArgument(fmt.Sprintf("port %d is out of range", port))
	}
	p, err := s.get(podID)
	if err != nil {
		return err
	}
	if !p.ready() {
		return errdefs.FailedPrecondition(fmt.Sprintf("pod sandbox %s is not ready", p.meta.ID))
	}
	var conn net.Conn
	dial := func() error {
		conn, err = dialLoopback(ctx, port)
		return err
	}
	if p.opts.hostNetwork {
		err = dial()
	} else if netns := p.status().Namespaces.Net; netns == "" {
		return errdefs.FailedPrecondition(fmt.Sprintf("pod sandbox %s has no network namespace", p.meta.ID))
	} else {
		// The socket is made on a thread inside the namespace and stays bound to it.
		err = nspin.Run(netns, nspin.Net, dial)
	}
	if err != nil {
		return fmt.Errorf("port forward to pod %s port %d: %w", p.meta.ID, port, err)
	}
	defer conn.Close()
	return splice(ctx, conn, stream)
}

// loopbacks are the pod's loopback addresses PortForward tries, in order: a server
// may listen on IPv4 or on IPv6 alone (an IPv6-only pod, or a [::1]-bound debug port).
var loopbacks = []string{"127.0.0.1", "::1"}

// dialLoopback connects to port on the first loopback address that answers, in the
// calling thread's network namespace.
func dialLoopback(ctx context.Context, port int32) (net.Conn, error) {
	var errs []error
	for _, ip := range loopbacks {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(ip, strconv.Itoa(int(port))))
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// splice copies both ways between conn and stream until the pod's side is done or ctx
// ends. The client's end of its data only half-closes the connection, so that the
// pod's answer still arrives; the pod's end of its answer ends the session.
func splice(ctx context.Context, conn net.Conn, stream io.ReadWriteCloser) error {
	var once sync.Once
	closeBoth := func() {
		once.Do(func() {
			_ = conn.Close()
			_ = stream.Close()
		})
	}
	stop := context.AfterFunc(ctx, closeBoth)
	defer stop()
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		_, _ = io.Copy(conn, stream)
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}()
	_, err := io.Copy(stream, conn)
	closeBoth()
	<-sent
	if ctx.Err() != nil {
		return nil
	}
	return ignoreClosed(err)
}

// ignoreClosed drops the errors of copies cut short by the close that ends the session.
func ignoreClosed(err error) error {
	if err == nil || errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrClosedPipe) {
		return nil
	}
	return err
}

// drainResize discards resize events until ctx ends or the channel closes.
func drainResize(ctx context.Context, resize <-chan TerminalSize) {
	if resize == nil {
		return
	}
	for {
		select {
		case _, ok := <-resize:
			if !ok {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}
