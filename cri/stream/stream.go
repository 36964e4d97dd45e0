package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming"

	"github.com/berth-runtime/berth/sandbox"
)

// Runtime is what a streaming session needs of berth's containers and pods
// (sandbox.Service).
type Runtime interface {
	ExecStream(ctx context.Context, id string, cmd []string, stdin io.Reader, stdout, stderr io.WriteCloser, tty bool, resize <-chan sandbox.TerminalSize) error
	Attach(ctx context.Context, id string, stdin io.Reader, stdout, stderr io.WriteCloser, tty bool, resize <-chan sandbox.TerminalSize) error
	PortForward(ctx context.Context, podID string, port int32, stream io.ReadWriteCloser) error
}

// Server is the streaming HTTP server. Its URLs are valid once New returned; it serves
// them between Start and Stop.
type Server struct {
	lis  net.Listener
	lib  streaming.Server
	http *http.Server
	done chan error
}

// shutdownGrace is how long Stop lets sessions end by themselves before it cuts them.
// Sessions last as long as an exec or an attach does, so Stop cannot wait for them.
const shutdownGrace = 2 * time.Second

// New listens on address (host:port, loopback only; port 0 picks a free port) and
// builds the server over rt.
func New(address string, rt Runtime) (*Server, error) {
	if err := checkLoopback(address); err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", address)
	if err != nil {
		return nil, fmt.Errorf("streaming server: %w", err)
	}
	lc := streaming.DefaultConfig
	// The URLs must name the port actually bound, known only after the listen: the
	// library's own Start would listen itself and fix its URLs only then, racing the
	// first Get*.
	lc.Addr = lis.Addr().String()
	lc.BaseURL = &url.URL{Scheme: "http", Host: lc.Addr}
	lib, err := streaming.NewServer(lc, &adapter{rt: rt})
	if err != nil {
		_ = lis.Close()
		return nil, fmt.Errorf("streaming server: %w", err)
	}
	return &Server{
		lis:  lis,
		lib:  lib,
		http: &http.Server{Handler: lib, ReadHeaderTimeout: 30 * time.Second},
	}, nil
}

// checkLoopback refuses an address that is not a loopback IP: the token in the URL is
// the server's only credential, and anyone who could reach the port could race kubelet
// for it or scan for it.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("streaming address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("streaming address %q: must be a loopback IP (kubelet proxies to it; the server has no authentication)", addr)
	}
	return nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.lis.Addr() }

// Start serves in the background until Stop.
func (s *Server) Start() {
	s.done = make(chan error, 1)
	go func() { s.done <- s.http.Serve(s.lis) }()
}

// Stop stops accepting sessions, lets open ones end for a moment, then cuts them.
func (s *Server) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	err := s.http.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = s.http.Close()
	}
	if s.done == nil { // never started: Shutdown closed nothing of ours
		_ = s.lis.Close()
		return err
	}
	if serveErr := <-s.done; !errors.Is(serveErr, http.ErrServerClosed) && err == nil {
		err = serveErr
	}
	return err
}

// GetExec validates req and returns the URL of its session.
func (s *Server) GetExec(req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	return s.lib.GetExec(req)
}

// GetAttach validates req and returns the URL of its session.
func (s *Server) GetAttach(req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	return s.lib.GetAttach(req)
}

// GetPortForward validates req and returns the URL of its session.
func (s *Server) GetPortForward(req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	return s.lib.GetPortForward(req)
}
