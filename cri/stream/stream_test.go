package stream

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	remotecommand "k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"

	"github.com/berth-runtime/berth/sandbox"
)

func TestCheckLoopback(t *testing.T) {
	tests := []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:0", true},
		{"127.0.0.1:10010", true},
		{"[::1]:0", true},
		{"0.0.0.0:0", false},
		{"10.0.0.1:0", false},
		{"localhost:0", false}, // a name could resolve anywhere
		{":0", false},
		{"127.0.0.1", false},
	}
	for _, tc := range tests {
		if err := checkLoopback(tc.addr); (err == nil) != tc.ok {
			t.Errorf("checkLoopback(%q) = %v, want ok=%t", tc.addr, err, tc.ok)
		}
	}
}

func TestExitError(t *testing.T) {
	other := errors.New("runtime failed")
	tests := []struct {
		name   string
		in     error
		exited bool
		code   int
	}{
		{"nil", nil, false, 0},
		{"exit code", &sandbox.ExitError{Code: 3}, true, 3},
		{"wrapped exit code", errors.Join(other, &sandbox.ExitError{Code: 7}), true, 7},
		{"other error", other, false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := exitError(tc.in)
			ee, ok := got.(utilexec.ExitError)
			if ok != tc.exited {
				t.Fatalf("exitError(%v) = %#v; an ExitError: %t, want %t", tc.in, got, ok, tc.exited)
			}
			if ok && (!ee.Exited() || ee.ExitStatus() != tc.code) {
				t.Fatalf("exit status %d (exited %t), want %d", ee.ExitStatus(), ee.Exited(), tc.code)
			}
			if !ok && got != tc.in {
				t.Fatalf("exitError(%v) = %v, want it unchanged", tc.in, got)
			}
		})
	}
}

func TestConvertResize(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if convertResize(ctx, nil) != nil {
		t.Fatal("a session without a resize stream must give a nil channel")
	}
	in := make(chan remotecommand.TerminalSize)
	out := convertResize(ctx, in)
	in <- remotecommand.TerminalSize{Width: 80, Height: 24}
	if got := <-out; got != (sandbox.TerminalSize{Width: 80, Height: 24}) {
		t.Fatalf("got %+v", got)
	}
	close(in)
	select {
	case _, ok := <-out:
		if ok {
			t.Fatal("an event out of nowhere")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the converted channel was not closed with its source")
	}
}

// nopRuntime fails every session: these tests only hand out URLs.
type nopRuntime struct{}

func (nopRuntime) ExecStream(context.Context, string, []string, io.Reader, io.WriteCloser, io.WriteCloser, bool, <-chan sandbox.TerminalSize) error {
	return errors.New("no")
}

func (nopRuntime) Attach(context.Context, string, io.Reader, io.WriteCloser, io.WriteCloser, bool, <-chan sandbox.TerminalSize) error {
	return errors.New("no")
}

func (nopRuntime) PortForward(context.Context, string, int32, io.ReadWriteCloser) error {
	return errors.New("no")
}

func TestURLsNameTheBoundPort(t *testing.T) {
	if _, err := New("0.0.0.0:0", nopRuntime{}); err == nil {
		t.Fatal("New accepted a non-loopback address")
	}
	s, err := New("127.0.0.1:0", nopRuntime{})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	defer func() {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
	}()
	resp, err := s.GetExec(&runtimeapi.ExecRequest{ContainerId: "c", Cmd: []string{"true"}, Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(resp.Url)
	if err != nil {
		t.Fatal(err)
	}
	if u.Host != s.Addr().String() || !strings.HasPrefix(u.Path, "/exec/") {
		t.Fatalf("exec URL %q, want http://%s/exec/<token>", resp.Url, s.Addr())
	}
	// Tokens are single use: two requests never share one.
	again, err := s.GetExec(&runtimeapi.ExecRequest{ContainerId: "c", Cmd: []string{"true"}, Stdout: true})
	if err != nil || again.Url == resp.Url {
		t.Fatalf("second URL %q (%v), want a fresh token", again.GetUrl(), err)
	}
	// The first request consumes the token (and fails: it is no SPDY upgrade); any
	// later one finds nothing behind it.
	for i, want := range []bool{false, true} {
		r, err := http.Get(resp.Url)
		if err != nil {
			t.Fatal(err)
		}
		_ = r.Body.Close()
		if got := r.StatusCode == http.StatusNotFound; got != want {
			t.Fatalf("request %d: status %d, want 404: %t", i+1, r.StatusCode, want)
		}
	}
	pf, err := s.GetPortForward(&runtimeapi.PortForwardRequest{PodSandboxId: "p"})
	if err != nil || !strings.Contains(pf.GetUrl(), "/portforward/") {
		t.Fatalf("port-forward URL %q, %v", pf.GetUrl(), err)
	}
}
