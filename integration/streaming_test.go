package integration

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/hack/testimages"
)

// streamEnv is a berthd on a test network, with busybox pulled and one ready pod.
type streamEnv struct {
	d      *daemon
	pod    string
	podCfg *runtimeapi.PodSandboxConfig
}

// newStreamEnv starts the registry, berthd and a pod; the pod (so its containers) is
// removed when the test ends.
func newStreamEnv(t *testing.T) *streamEnv {
	t.Helper()
	reg, _ := servedBusybox(t)
	n := newTestNetwork(t)
	e := &streamEnv{d: startDaemon(t, daemonOptions{Config: n.toml() + reg.MirrorTOML()})}
	e.d.pull(t, testimages.BusyboxImage)
	e.podCfg = podConfig(t, "stream")
	e.pod = e.d.runPod(t, e.podCfg)
	e.d.cleanupPods(t, e.pod)
	return e
}

// runContainer creates and starts a busybox container running cmd.
func (e *streamEnv) runContainer(t *testing.T, name string, cmd ...string) string {
	t.Helper()
	return e.runConfig(t, &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: name},
		Image:    &runtimeapi.ImageSpec{Image: testimages.BusyboxImage},
		Command:  cmd,
		Linux:    &runtimeapi.LinuxContainerConfig{},
	})
}

// runConfig creates and starts a container.
func (e *streamEnv) runConfig(t *testing.T, cfg *runtimeapi.ContainerConfig) string {
	t.Helper()
	name := cfg.GetMetadata().GetName()
	ctx := ctxTimeout(t, time.Minute)
	resp, err := e.d.runtime.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId: e.pod, SandboxConfig: e.podCfg, Config: cfg,
	})
	if err != nil {
		t.Fatalf("CreateContainer %s: %v", name, err)
	}
	if _, err := e.d.runtime.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: resp.ContainerId}); err != nil {
		t.Fatalf("StartContainer %s: %v", name, err)
	}
	return resp.ContainerId
}

// TestStreamingExec execs through the streaming server with crictl, which speaks the
// same SPDY protocol as kubelet: output on both streams, stdin, and the exit code.
func TestStreamingExec(t *testing.T) {
	t.Parallel()
	e := newStreamEnv(t)
	id := e.runContainer(t, "sleeper", "sleep", "3600")

	tests := []struct {
		name     string
		opts     []string // crictl exec's, before the container id
		args     []string
		stdin    string
		stdout   string
		stderr   string // contained in crictl's error
		exitCode int    // 0: crictl succeeds
	}{
		{name: "stdout", args: []string{"echo", "hello"}, stdout: "hello\n"},
		{name: "stdin", opts: []string{"-i"}, args: []string{"cat"}, stdin: "from stdin\n", stdout: "from stdin\n"},
		{name: "exit code", args: []string{"sh", "-c", "echo out; echo err >&2; exit 3"},
			stdout: "out\n", stderr: "err", exitCode: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := ctxTimeout(t, time.Minute)
			args := []string{"--runtime-endpoint", "unix://" + e.d.socket, "--timeout", "30s", "exec"}
			args = append(append(append(args, tc.opts...), id), tc.args...)
			cmd := exec.CommandContext(ctx, crictlBinary(t), args...)
			cmd.Stdin = strings.NewReader(tc.stdin)
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			if stdout.String() != tc.stdout {
				t.Errorf("stdout %q, want %q", stdout.String(), tc.stdout)
			}
			if !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("stderr %q, want it to contain %q", stderr.String(), tc.stderr)
			}
			switch {
			case tc.exitCode == 0 && err != nil:
				t.Errorf("crictl exec: %v: %s", err, stderr.String())
			case tc.exitCode != 0 && !strings.Contains(stderr.String(), "exit code "+strconv.Itoa(tc.exitCode)):
				t.Errorf("crictl exec: %v: %q, want exit code %d reported", err, stderr.String(), tc.exitCode)
			}
		})
	}

	t.Run("not running", func(t *testing.T) {
		if _, err := e.d.runtime.StopContainer(ctxTimeout(t, time.Minute), &runtimeapi.StopContainerRequest{ContainerId: id}); err != nil {
			t.Fatal(err)
		}
		_, err := e.d.runtime.Exec(ctxTimeout(t, time.Minute), &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"true"}, Stdout: true})
		if status.Code(err) != codes.FailedPrecondition {
			t.Fatalf("Exec in a stopped container: %v, want FailedPrecondition", err)
		}
	})
}

// TestStreamingAttach attaches to a shell's stdio with crictl: the shell runs what
// arrives on stdin, its output comes back, and the end of stdin (StdinOnce) closes the
// shell's, so it exits and the session ends.
func TestStreamingAttach(t *testing.T) {
	t.Parallel()
	e := newStreamEnv(t)
	id := e.runConfig(t, &runtimeapi.ContainerConfig{
		Metadata:  &runtimeapi.ContainerMetadata{Name: "shell"},
		Image:     &runtimeapi.ImageSpec{Image: testimages.BusyboxImage},
		Command:   []string{"sh"},
		Linux:     &runtimeapi.LinuxContainerConfig{},
		Stdin:     true,
		StdinOnce: true,
	})
	ctx := ctxTimeout(t, time.Minute)
	cmd := exec.CommandContext(ctx, crictlBinary(t), "--runtime-endpoint", "unix://"+e.d.socket,
		"attach", "-i", id)
	cmd.Stdin = strings.NewReader("echo attached; echo oops >&2\n")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("crictl attach: %v: %s", err, stderr.String())
	}
	if stdout.String() != "attached\n" || !strings.Contains(stderr.String(), "oops") {
		t.Fatalf("stdout %q, stderr %q; want attached and oops", stdout.String(), stderr.String())
	}
}

// TestStreamingPortForward forwards a local port with crictl to a server that listens
// on the pod's own loopback only: reaching it proves the dial happens in the pod's
// network namespace.
func TestStreamingPortForward(t *testing.T) {
	t.Parallel()
	e := newStreamEnv(t)
	e.runContainer(t, "web", "sh", "-c",
		"mkdir -p /tmp/www && echo streamed > /tmp/www/index.html && exec httpd -f -p 127.0.0.1:8080 -h /tmp/www")

	local := freePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	endpoint := "unix://" + e.d.socket
	cmd := exec.CommandContext(ctx, crictlBinary(t), "--runtime-endpoint", endpoint,
		"port-forward", e.pod, strconv.Itoa(local)+":8080")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel() // kills the crictl this test started
		_ = cmd.Wait()
	}()
	forwarding := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "Forwarding from") {
				forwarding <- true
				break
			}
		}
		_, _ = io.Copy(io.Discard, out)
		forwarding <- false
	}()
	if !<-forwarding {
		t.Fatalf("crictl port-forward did not start: %s", stderr.String())
	}

	// httpd may still be starting: retry until the page arrives.
	url := "http://127.0.0.1:" + strconv.Itoa(local) + "/index.html"
	deadline := time.Now().Add(30 * time.Second)
	for {
		body, err := httpGet(url)
		if err == nil && body == "streamed\n" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET through the forward: %q, %v; crictl: %s", body, err, stderr.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func httpGet(url string) (string, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// freePort is a loopback port nothing listens on (a race with other processes is
// possible but harmless here: crictl then fails and the test says so).
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
