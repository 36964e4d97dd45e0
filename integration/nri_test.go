package integration

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	nriapi "github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// testPlugin is an NRI plugin living in the test: it records the events it sees, adds
// an environment variable and an annotation to every container it is asked about, and
// blocks in RunPodSandbox and CreateContainer while hang is open.
type testPlugin struct {
	hang chan struct{} // nil: answer at once
	// crash, when set, is called in RunPodSandbox instead of answering (the plugin
	// "dies": its connection is cut).
	crash  func()
	synced chan struct{}
	once   sync.Once
	// updateLimit, when set, is the memory limit the plugin puts in place of the one
	// an UpdateContainerResources asks for.
	updateLimit int64

	mu     sync.Mutex
	events []string
}

func (p *testPlugin) record(event, id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, event+" "+id)
}

func (p *testPlugin) seen(event, id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.events {
		if e == event+" "+id {
			return true
		}
	}
	return false
}

// wait blocks while hang is open, deaf to the request's deadline as a hung plugin is.
func (p *testPlugin) wait() {
	if p.hang != nil {
		<-p.hang
	}
}

func (p *testPlugin) Synchronize(context.Context, []*nriapi.PodSandbox, []*nriapi.Container) ([]*nriapi.ContainerUpdate, error) {
	p.once.Do(func() { close(p.synced) })
	return nil, nil
}

func (p *testPlugin) RunPodSandbox(ctx context.Context, pod *nriapi.PodSandbox) error {
	p.record("RunPodSandbox", pod.GetId())
	if p.crash != nil {
		p.crash()
		<-ctx.Done()
		return ctx.Err()
	}
	p.wait()
	return nil
}

func (p *testPlugin) CreateContainer(_ context.Context, _ *nriapi.PodSandbox, c *nriapi.Container) (*nriapi.ContainerAdjustment, []*nriapi.ContainerUpdate, error) {
	p.record("CreateContainer", c.GetId())
	p.wait()
	adjust := &nriapi.ContainerAdjustment{}
	adjust.AddEnv("NRI_TEST_PLUGIN", "adjusted-"+c.GetName())
	adjust.AddAnnotation("nri.berth.test/plugin", "saw "+c.GetName())
	return adjust, nil, nil
}

func (p *testPlugin) UpdateContainer(_ context.Context, _ *nriapi.PodSandbox, c *nriapi.Container, _ *nriapi.LinuxResources) ([]*nriapi.ContainerUpdate, error) {
	p.record("UpdateContainer", c.GetId())
	if p.updateLimit == 0 {
		return nil, nil
	}
	u := &nriapi.ContainerUpdate{ContainerId: c.GetId()}
	u.SetLinuxMemoryLimit(p.updateLimit)
	return []*nriapi.ContainerUpdate{u}, nil
}

func (p *testPlugin) StartContainer(_ context.Context, _ *nriapi.PodSandbox, c *nriapi.Container) error {
	p.record("StartContainer", c.GetId())
	return nil
}

func (p *testPlugin) StopContainer(_ context.Context, _ *nriapi.PodSandbox, c *nriapi.Container) ([]*nriapi.ContainerUpdate, error) {
	p.record("StopContainer", c.GetId())
	return nil, nil
}

func (p *testPlugin) RemoveContainer(_ context.Context, _ *nriapi.PodSandbox, c *nriapi.Container) error {
	p.record("RemoveContainer", c.GetId())
	return nil
}

// connectPlugin connects p to d's NRI socket and waits until it is synchronized; it
// is disconnected when the test ends.
func connectPlugin(t *testing.T, d *daemon, name string, p *testPlugin, opts ...stub.Option) stub.Stub {
	t.Helper()
	p.synced = make(chan struct{})
	opts = append([]stub.Option{stub.WithPluginName(name), stub.WithPluginIdx("50"), stub.WithSocketPath(d.nriSocket())}, opts...)
	s, err := stub.New(p, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Start(ctx); err != nil {
		cancel()
		t.Fatalf("NRI plugin %s: %v", name, err)
	}
	t.Cleanup(func() { cancel(); s.Stop() })
	select {
	case <-p.synced:
	case <-time.After(30 * time.Second):
		t.Fatalf("NRI plugin %s was not synchronized within 30s", name)
	}
	return s
}

// newNRIEnv is newCtrEnv with NRI settings of the test's, and no pod yet.
func newNRIEnv(t *testing.T, nri string) *ctrEnv {
	t.Helper()
	b, imgs := testCatalogue(t)
	e := &ctrEnv{builder: b, logDir: t.TempDir()}
	e.reg = serveRegistry(t, imgs...)
	e.n = newTestNetwork(t)
	e.config = e.n.toml() + e.reg.MirrorTOML()
	e.d = startDaemon(t, daemonOptions{Config: e.config, NRI: nri})
	e.d.pull(t, busyboxRef)
	return e
}

func (e *ctrEnv) runNRIPod(t *testing.T) {
	t.Helper()
	e.podCfg = podConfig(t, "nri-"+strings.ToLower(cleanName(t.Name())), func(c *runtimeapi.PodSandboxConfig) {
		c.LogDirectory = e.logDir
	})
	e.pod = e.d.runPod(t, e.podCfg)
	e.d.cleanupPods(t, e.pod)
}

// bundleSpec reads the OCI spec berthd wrote for a container (next to its rootfs).
func (e *ctrEnv) bundleSpec(t *testing.T, id string) *specs.Spec {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(filepath.Dir(e.info(t, id).Rootfs), "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var sp specs.Spec
	if err := json.Unmarshal(data, &sp); err != nil {
		t.Fatal(err)
	}
	return &sp
}

func TestNRIPluginAdjustsContainer(t *testing.T) {
	e := newNRIEnv(t, "")
	p := &testPlugin{}
	connectPlugin(t, e.d, "adjuster", p)
	e.runNRIPod(t)
	if !p.seen("RunPodSandbox", e.pod) {
		t.Errorf("the plugin saw no RunPodSandbox for pod %s: %q", e.pod, p.events)
	}

	id := e.run(t, ctrConfig("adjusted", sh("sleep 3600")))
	if got := strings.TrimSpace(e.exec(t, id, "sh", "-c", "echo $NRI_TEST_PLUGIN")); got != "adjusted-adjusted" {
		t.Errorf("NRI_TEST_PLUGIN in the container = %q, want adjusted-adjusted", got)
	}
	if got := e.bundleSpec(t, id).Annotations["nri.berth.test/plugin"]; got != "saw adjusted" {
		t.Errorf("annotation in the container's spec = %q, want %q", got, "saw adjusted")
	}
	e.stop(t, id, 0)
	e.remove(t, id)
	for _, ev := range []string{"CreateContainer", "StartContainer", "StopContainer", "RemoveContainer"} {
		if !p.seen(ev, id) {
			t.Errorf("the plugin saw no %s for container %s: %q", ev, id, p.events)
		}
	}
}

// TestNRIHungPluginIsBounded: a plugin that never answers holds a pod up for one
// request timeout, then is dropped and the pod and its containers go on without it.
func TestNRIHungPluginIsBounded(t *testing.T) {
	const requestTimeout = 2 * time.Second
	e := newNRIEnv(t, `plugin_request_timeout = "2s"`)
	p := &testPlugin{hang: make(chan struct{})}
	connectPlugin(t, e.d, "hung", p)
	t.Cleanup(func() { close(p.hang) }) // first: the plugin's handlers return before it stops

	start := time.Now()
	e.runNRIPod(t)
	took := time.Since(start)
	if !p.seen("RunPodSandbox", e.pod) {
		t.Fatalf("the hung plugin was never called: %q", p.events)
	}
	if took < requestTimeout {
		t.Errorf("RunPodSandbox took %s: it did not wait for the plugin at all", took)
	}
	if took > requestTimeout+30*time.Second {
		t.Errorf("RunPodSandbox took %s: a hung plugin held it past the %s bound", took, requestTimeout)
	}
	// The plugin was dropped: a container is created at once and without its adjustment.
	start = time.Now()
	id := e.run(t, ctrConfig("after-hang", sh("sleep 3600")))
	if took := time.Since(start); took > requestTimeout+30*time.Second {
		t.Errorf("creating a container after the plugin hung took %s", took)
	}
	if p.seen("CreateContainer", id) {
		t.Errorf("the dropped plugin was still asked about container %s", id)
	}
	if got := strings.TrimSpace(e.exec(t, id, "sh", "-c", "echo ${NRI_TEST_PLUGIN:-none}")); got != "none" {
		t.Errorf("NRI_TEST_PLUGIN = %q in a container created after the plugin was dropped", got)
	}
}

// TestNRICrashedPluginIsDropped: a plugin whose connection dies in the middle of a hook
// is dropped at once; the pod is made without it.
func TestNRICrashedPluginIsDropped(t *testing.T) {
	e := newNRIEnv(t, `plugin_request_timeout = "1m"`) // only the crash can end the hook early
	conns := make(chan net.Conn, 1)
	dial := func(path string) (net.Conn, error) {
		c, err := net.Dial("unix", path)
		if err == nil {
			conns <- c
		}
		return c, err
	}
	p := &testPlugin{crash: func() { (<-conns).Close() }}
	connectPlugin(t, e.d, "crasher", p, stub.WithDialer(dial))

	start := time.Now()
	e.runNRIPod(t)
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("RunPodSandbox took %s with a plugin that died", took)
	}
	if !p.seen("RunPodSandbox", e.pod) {
		t.Fatalf("the plugin was never called: %q", p.events)
	}
	id := e.run(t, ctrConfig("after-crash", sh("sleep 3600")))
	if p.seen("CreateContainer", id) {
		t.Errorf("the dead plugin was still asked about container %s", id)
	}
}

// TestNRIPluginUpdatesContainer: a plugin changes the resources of an update kubelet
// asks for, and updates a running container on its own.
func TestNRIPluginUpdatesContainer(t *testing.T) {
	e := newNRIEnv(t, "")
	p := &testPlugin{updateLimit: 112 << 20}
	s := connectPlugin(t, e.d, "updater", p)
	e.runNRIPod(t)
	id := e.run(t, ctrConfig("updated", []string{"sleep", "1000"}, func(c *runtimeapi.ContainerConfig) {
		c.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 64 << 20}
	}))
	e.removeAtEnd(t, id)
	limit := func() string {
		return strings.TrimSpace(readFile(t, filepath.Join("/sys/fs/cgroup/memory/berth", id, "memory.limit_in_bytes")))
	}

	upd := &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 128 << 20}
	if _, err := e.d.runtime.UpdateContainerResources(ctxTimeout(t, time.Minute),
		&runtimeapi.UpdateContainerResourcesRequest{ContainerId: id, Linux: upd}); err != nil {
		t.Fatalf("UpdateContainerResources: %v", err)
	}
	if !p.seen("UpdateContainer", id) {
		t.Errorf("the plugin saw no UpdateContainer: %q", p.events)
	}
	if got := limit(); got != strconv.Itoa(112<<20) {
		t.Errorf("memory limit after an update the plugin changed = %s, want %d", got, 112<<20)
	}
	if got := e.status(t, id).GetResources().GetLinux().GetMemoryLimitInBytes(); got != 112<<20 {
		t.Errorf("ContainerStatus reports a memory limit of %d, want the applied %d", got, 112<<20)
	}

	u := &nriapi.ContainerUpdate{ContainerId: id}
	u.SetLinuxMemoryLimit(96 << 20)
	failed, err := s.UpdateContainers([]*nriapi.ContainerUpdate{u})
	if err != nil || len(failed) > 0 {
		t.Fatalf("UpdateContainers: failed %v, %v", failed, err)
	}
	if got := limit(); got != strconv.Itoa(96<<20) {
		t.Errorf("memory limit after the plugin's own update = %s, want %d", got, 96<<20)
	}
}
