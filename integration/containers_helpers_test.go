package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/hack/testimages"
)

// busyboxRef is the image most container tests run: busybox with PATH and sh.
const busyboxRef = testimages.DefaultTestImage

var catalogueBuild struct {
	once    sync.Once
	builder *testimages.Builder
	images  []testimages.Image
	err     error
}

// testCatalogue builds the test image catalogue once per test binary.
func testCatalogue(t *testing.T) (*testimages.Builder, []testimages.Image) {
	t.Helper()
	catalogueBuild.once.Do(func() {
		ctx := ctxTimeout(t, 5*time.Minute)
		bb, err := testimages.EnsureBusybox(ctx)
		if err != nil {
			catalogueBuild.err = err
			return
		}
		if catalogueBuild.builder, err = testimages.NewBuilder(bb); err != nil {
			catalogueBuild.err = err
			return
		}
		catalogueBuild.images, catalogueBuild.err = catalogueBuild.builder.Catalogue()
	})
	if catalogueBuild.err != nil {
		t.Fatalf("test images: %v", catalogueBuild.err)
	}
	return catalogueBuild.builder, catalogueBuild.images
}

// ctrEnv is a berthd on a test network that pulls from a registry serving the test
// catalogue, with one ready pod whose log directory is logDir.
type ctrEnv struct {
	d       *daemon
	n       *testNetwork
	reg     *testimages.Registry
	config  string // berthd's TOML, for a restart on the same root
	pod     string
	podCfg  *runtimeapi.PodSandboxConfig
	logDir  string
	builder *testimages.Builder
}

// newCtrEnv starts the registry, berthd and a pod (edited by edits), pulls busybox, and
// removes the pod (so its containers) when the test ends, also when it fails.
func newCtrEnv(t *testing.T, edits ...func(*runtimeapi.PodSandboxConfig)) *ctrEnv {
	t.Helper()
	return newCtrEnvWith(t, "", edits...)
}

// newCtrEnvWith is newCtrEnv with extra TOML appended to berthd's configuration.
func newCtrEnvWith(t *testing.T, extraConfig string, edits ...func(*runtimeapi.PodSandboxConfig)) *ctrEnv {
	t.Helper()
	b, imgs := testCatalogue(t)
	e := &ctrEnv{builder: b, logDir: t.TempDir()}
	e.reg = serveRegistry(t, imgs...)
	e.n = newTestNetwork(t)
	e.config = e.n.toml() + e.reg.MirrorTOML() + extraConfig
	e.d = startDaemon(t, daemonOptions{Config: e.config})
	e.d.pull(t, busyboxRef)
	e.podCfg = podConfig(t, "ctr-"+strings.ToLower(cleanName(t.Name())), append([]func(*runtimeapi.PodSandboxConfig){
		func(c *runtimeapi.PodSandboxConfig) { c.LogDirectory = e.logDir },
	}, edits...)...)
	e.pod = e.d.runPod(t, e.podCfg)
	e.d.cleanupPods(t, e.pod)
	return e
}

// cleanName keeps the letters and digits of a test name (hostnames are short).
func cleanName(s string) string {
	var b strings.Builder
	for _, r := range s {
		if (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		}
	}
	out := b.String()
	if len(out) > 40 {
		out = out[len(out)-40:]
	}
	return out
}

// ctrConfig is a busybox container named name running cmd, logging to <name>/0.log.
func ctrConfig(name string, cmd []string, edits ...func(*runtimeapi.ContainerConfig)) *runtimeapi.ContainerConfig {
	c := &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: name},
		Image:    &runtimeapi.ImageSpec{Image: busyboxRef},
		Command:  cmd,
		LogPath:  name + "/0.log",
		Linux:    &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{}},
	}
	for _, e := range edits {
		e(c)
	}
	return c
}

// sh is the command sh -c script.
func sh(script string) []string { return []string{"sh", "-c", script} }

func (e *ctrEnv) createErr(t *testing.T, cfg *runtimeapi.ContainerConfig) (string, error) {
	t.Helper()
	resp, err := e.d.runtime.CreateContainer(ctxTimeout(t, time.Minute), &runtimeapi.CreateContainerRequest{
		PodSandboxId: e.pod, Config: cfg, SandboxConfig: e.podCfg,
	})
	return resp.GetContainerId(), err
}

func (e *ctrEnv) create(t *testing.T, cfg *runtimeapi.ContainerConfig) string {
	t.Helper()
	id, err := e.createErr(t, cfg)
	if err != nil {
		t.Fatalf("CreateContainer %s: %v", cfg.Metadata.Name, err)
	}
	return id
}

func (e *ctrEnv) start(t *testing.T, id string) {
	t.Helper()
	if _, err := e.d.runtime.StartContainer(ctxTimeout(t, time.Minute), &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		t.Fatalf("StartContainer %s: %v", id, err)
	}
}

// run creates and starts a container.
func (e *ctrEnv) run(t *testing.T, cfg *runtimeapi.ContainerConfig) string {
	t.Helper()
	id := e.create(t, cfg)
	e.start(t, id)
	return id
}

func (e *ctrEnv) stop(t *testing.T, id string, timeout int64) {
	t.Helper()
	if _, err := e.d.runtime.StopContainer(ctxTimeout(t, time.Minute), &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: timeout}); err != nil {
		t.Fatalf("StopContainer %s: %v", id, err)
	}
}

func (e *ctrEnv) remove(t *testing.T, id string) {
	t.Helper()
	if _, err := e.d.runtime.RemoveContainer(ctxTimeout(t, time.Minute), &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
		t.Fatalf("RemoveContainer %s: %v", id, err)
	}
}

// removeAtEnd removes container id when the (sub)test ends, whether it passed or not.
func (e *ctrEnv) removeAtEnd(t *testing.T, id string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := e.d.runtime.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
			t.Errorf("RemoveContainer %s: %v", id, err)
		}
	})
}

func (e *ctrEnv) status(t *testing.T, id string) *runtimeapi.ContainerStatus {
	t.Helper()
	resp, err := e.d.runtime.ContainerStatus(ctxTimeout(t, 10*time.Second), &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		t.Fatalf("ContainerStatus %s: %v", id, err)
	}
	return resp.Status
}

// ctrInfo is the verbose part of ContainerStatus that the tests read.
type ctrInfo struct {
	Pid        int    `json:"pid"`
	MonitorPid int    `json:"monitorPid"`
	Rootfs     string `json:"rootfs"`
	MonitorDir string `json:"monitorDir"`
}

func (e *ctrEnv) info(t *testing.T, id string) ctrInfo {
	t.Helper()
	resp, err := e.d.runtime.ContainerStatus(ctxTimeout(t, 10*time.Second), &runtimeapi.ContainerStatusRequest{ContainerId: id, Verbose: true})
	if err != nil {
		t.Fatalf("ContainerStatus %s: %v", id, err)
	}
	var info ctrInfo
	if err := json.Unmarshal([]byte(resp.Info["info"]), &info); err != nil {
		t.Fatalf("verbose info %q: %v", resp.Info["info"], err)
	}
	return info
}

// waitExited polls until the container has exited and returns its status.
func (e *ctrEnv) waitExited(t *testing.T, id string, timeout time.Duration) *runtimeapi.ContainerStatus {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := e.status(t, id)
		if st.State == runtimeapi.ContainerState_CONTAINER_EXITED {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %s still %v after %s", st.Metadata.GetName(), st.State, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// execErr runs cmd in container id with a timeout in seconds (0: none).
func (e *ctrEnv) execErr(t *testing.T, id string, timeout int64, cmd ...string) (*runtimeapi.ExecSyncResponse, error) {
	t.Helper()
	return e.d.runtime.ExecSync(ctxTimeout(t, time.Minute), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: cmd, Timeout: timeout})
}

// exec runs cmd in container id and returns its stdout; it fails the test unless the
// command succeeds.
func (e *ctrEnv) exec(t *testing.T, id string, cmd ...string) string {
	t.Helper()
	resp, err := e.execErr(t, id, 0, cmd...)
	if err != nil {
		t.Fatalf("ExecSync %q: %v", cmd, err)
	}
	if resp.ExitCode != 0 {
		t.Fatalf("ExecSync %q: exit %d: %s%s", cmd, resp.ExitCode, resp.Stdout, resp.Stderr)
	}
	return string(resp.Stdout)
}

// procStatus is the field of /proc/self/status (of a process exec'd in the container).
func (e *ctrEnv) procStatus(t *testing.T, id, field string) string {
	t.Helper()
	for _, l := range strings.Split(e.exec(t, id, "cat", "/proc/self/status"), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return ""
}

// logLine is one line of a CRI log.
type logLine struct {
	time           time.Time
	stream, tag, s string
}

// readCRILog parses the CRI log at path; malformed lines fail the test.
func readCRILog(t *testing.T, path string) []logLine {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []logLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), " ", 4)
		if len(parts) != 4 {
			t.Fatalf("malformed CRI log line %q", sc.Text())
		}
		ts, err := time.Parse(time.RFC3339Nano, parts[0])
		if err != nil || (parts[1] != "stdout" && parts[1] != "stderr") || (parts[2] != "F" && parts[2] != "P") {
			t.Fatalf("malformed CRI log line %q (%v)", sc.Text(), err)
		}
		out = append(out, logLine{time: ts, stream: parts[1], tag: parts[2], s: parts[3]})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// logText is the content of the log's lines joined with newlines (P pieces joined).
func logText(t *testing.T, path string) string {
	t.Helper()
	var b strings.Builder
	for _, l := range readCRILog(t, path) {
		b.WriteString(l.s)
		if l.tag == "F" {
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// waitLogContains polls the container's log until it holds s.
func waitLogContains(t *testing.T, path, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if data, _ := os.ReadFile(path); strings.Contains(string(data), s) {
			return
		}
		if time.Now().After(deadline) {
			data, _ := os.ReadFile(path)
			t.Fatalf("log %s does not hold %q after %s:\n%s", path, s, timeout, data)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ctrTraces is what containers leave in berthd's directories: mounts under its
// directory, records, state and writable-layer directories, runtime state.
type ctrTraces struct {
	Mounts, Records, StateDirs, RWDirs, RuntimeState []string
}

func containerTraces(t *testing.T, d *daemon) ctrTraces {
	t.Helper()
	return ctrTraces{
		Mounts:       mountsUnder(t, d.dir),
		Records:      dirNames(filepath.Join(d.root(), "containers")),
		StateDirs:    dirNames(filepath.Join(d.dir, "state", "containers")),
		RWDirs:       dirNames(filepath.Join(d.root(), "rw")),
		RuntimeState: dirNames(filepath.Join(d.dir, "state", "runtime", "runc")),
	}
}

// pushBusybox publishes a busybox image with cfg in the env's registry under name
// (a Docker Hub reference, served by the mirror) and pulls it; it returns the reference.
func (e *ctrEnv) pushBusybox(t *testing.T, name string, cfg v1.Config) string {
	t.Helper()
	img, err := e.builder.BusyboxImage(testimages.Docker, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ref := "docker.io/" + name
	push(t, e.reg, img, ref)
	e.d.pull(t, ref)
	return ref
}
