package sandbox

import (
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/network"
	"github.com/berth-runtime/berth/sandbox/cgroups"
	"github.com/berth-runtime/berth/sandbox/runtime"
)

// fakeRuntime is a stateful OCI runtime: Run starts a real `sleep` (the pause code
// needs a live process behind the pid), Delete ends and forgets it. fail makes the
// named operation fail with the error given.
type fakeRuntime struct {
	mu   sync.Mutex
	ctrs map[string]*exec.Cmd
	fail map[string]error // "run", "delete"
}

var _ OCIRuntime = (*fakeRuntime)(nil)

func newFakeRuntime() *fakeRuntime {
	return &fakeRuntime{ctrs: map[string]*exec.Cmd{}, fail: map[string]error{}}
}

func (f *fakeRuntime) setFail(op string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[op] = err
}

// containers lists the containers the runtime has.
func (f *fakeRuntime) containers() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(maps.Keys(f.ctrs))
}

func (f *fakeRuntime) Run(_ context.Context, id string, _ runtime.CreateOptions) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail["run"]; err != nil {
		return 0, err // a failed Run deletes what it made: nothing stays
	}
	if _, ok := f.ctrs[id]; ok {
		return 0, fmt.Errorf("container %s: %w", id, errdefs.ErrAlreadyExists)
	}
	cmd := exec.Command("sleep", "3600")
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	go func() { _ = cmd.Wait() }() // reaps it, unless the pause code did first
	f.ctrs[id] = cmd
	return cmd.Process.Pid, nil
}

func (f *fakeRuntime) Delete(_ context.Context, id string, force bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail["delete"]; err != nil {
		return err
	}
	cmd, ok := f.ctrs[id]
	if !ok {
		return nil // absent: not an error, as runtime.Runtime
	}
	if alive(cmd.Process.Pid) && !force {
		return errdefs.FailedPrecondition("container " + id + " is running")
	}
	_ = cmd.Process.Kill()
	delete(f.ctrs, id)
	return nil
}

func (f *fakeRuntime) State(_ context.Context, id string) (runtime.State, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	cmd, ok := f.ctrs[id]
	if !ok {
		return runtime.State{}, errdefs.NotFound("container " + id)
	}
	if alive(cmd.Process.Pid) {
		return runtime.State{ID: id, Status: runtime.StatusRunning, Pid: cmd.Process.Pid}, nil
	}
	return runtime.State{ID: id, Status: runtime.StatusStopped}, nil
}

func (f *fakeRuntime) Kill(_ context.Context, id string, sig syscall.Signal, _ bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	cmd, ok := f.ctrs[id]
	if !ok {
		return errdefs.NotFound("container " + id)
	}
	return cmd.Process.Signal(sig)
}

func (f *fakeRuntime) Update(context.Context, string, *specs.LinuxResources) error { return nil }

func (f *fakeRuntime) Exec(context.Context, string, runtime.ExecOptions) (int32, error) {
	return 0, fmt.Errorf("fake runtime: exec: %w", errdefs.ErrUnimplemented)
}

func (f *fakeRuntime) Abandon(ctx context.Context, id, _ string) { _ = f.Delete(ctx, id, true) }

func (f *fakeRuntime) Command() runtime.Command {
	return runtime.Command{Path: "/bin/true", Root: "/nonexistent"}
}

// alive reports whether pid runs (a zombie does not).
func alive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(data), ')')
	return i > 0 && len(data) > i+2 && data[i+2] != 'Z'
}

// fakeNetwork is a stateful CNI network: Setup attaches, Teardown detaches. fail
// makes "setup" or "teardown" fail with the error given.
type fakeNetwork struct {
	mu       sync.Mutex
	attached map[string]bool
	fail     map[string]error
}

func newFakeNetwork() *fakeNetwork {
	return &fakeNetwork{attached: map[string]bool{}, fail: map[string]error{}}
}

func (n *fakeNetwork) setFail(op string, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.fail[op] = err
}

func (n *fakeNetwork) Setup(_ context.Context, p network.Pod) (network.Result, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if p.NetNS == "" {
		return network.Result{}, errdefs.InvalidArgument("no netns")
	}
	if err := n.fail["setup"]; err != nil {
		return network.Result{}, err // a failed Setup has undone itself
	}
	n.attached[p.ID] = true
	return network.Result{IPs: []net.IP{net.ParseIP("10.88.0.2")}, Interface: "eth0"}, nil
}

func (n *fakeNetwork) Teardown(_ context.Context, p network.Pod) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.fail["teardown"]; err != nil {
		return err
	}
	delete(n.attached, p.ID)
	return nil
}

func (n *fakeNetwork) AttachedPods() ([]string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Sorted(maps.Keys(n.attached)), nil
}

func (n *fakeNetwork) pods() []string {
	ids, _ := n.AttachedPods()
	return ids
}

// fakeEnv is a Service on fakes: runtime, network, a cgroup v2 tree in a temporary
// directory (with kubelet's /kubepods/burstable), and state under another.
type fakeEnv struct {
	s       *Service
	rt      *fakeRuntime
	net     *fakeNetwork
	images  *fakeImages
	monitor string // a monitor that only waits
	dir     string // records and state
	cgroot  string
}

func newFakeEnv(t *testing.T) *fakeEnv {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: pods pin namespaces and mount their shm")
	}
	e := &fakeEnv{rt: newFakeRuntime(), net: newFakeNetwork(), images: newFakeImages(t), monitor: fakeMonitor(t), dir: t.TempDir(), cgroot: t.TempDir()}
	for _, d := range []string{"", "kubepods", "kubepods/burstable"} {
		writeFiles(t, filepath.Join(e.cgroot, d), map[string]string{
			"cgroup.controllers": "cpu memory pids\n", "cgroup.subtree_control": "", "cgroup.procs": "",
		})
	}
	cgm, err := cgroups.NewManager(cgroups.Options{Root: e.cgroot, Mode: cgroups.ModeUnified})
	if err != nil {
		t.Fatal(err)
	}
	e.s, err = New(context.Background(), Config{
		RecordDir: filepath.Join(e.dir, "root", "pods"), StateDir: filepath.Join(e.dir, "state", "pods"),
		Handlers:       map[string]Handler{"runc": {Runtime: e.rt}},
		DefaultHandler: "runc", Network: e.net, Cgroups: cgm,
		PauseRootfs: t.TempDir(), PauseArgs: []string{"/pause"}, ShmSize: 1 << 20,
		Images: e.images, MonitorPath: e.monitor,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.s.Close(context.Background())
		killMonitors(e.monitor)
		for _, id := range e.rt.containers() {
			_ = e.rt.Delete(context.Background(), id, true)
		}
		unmountBelow(t, e.dir)
	})
	return e
}

// mountsBelow lists the mount points under dir.
func mountsBelow(t *testing.T, dir string) []string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			out = append(out, f[4])
		}
	}
	return out
}

// unmountBelow undoes what a failed test left mounted, so that t.TempDir can go.
func unmountBelow(t *testing.T, dir string) {
	mounts := mountsBelow(t, dir)
	slices.Reverse(mounts)
	for _, m := range mounts {
		_ = syscall.Unmount(m, syscall.MNT_DETACH)
	}
}

// entries lists what directory dir holds ("" when it does not exist).
func entries(dir string) []string {
	des, _ := os.ReadDir(dir)
	var out []string
	for _, d := range des {
		out = append(out, d.Name())
	}
	return out
}

// fakeImages leases images whose one layer is an empty directory. fail makes Lease
// fail with the error given; badConfig makes it return a config that does not parse.
type fakeImages struct {
	mu        sync.Mutex
	layer     string
	leases    map[string]string // holder -> ref
	fail      error
	badConfig bool
	layers    int // how many times the layer is stacked; 0: once
}

func newFakeImages(t *testing.T) *fakeImages {
	return &fakeImages{layer: t.TempDir(), leases: map[string]string{}}
}

func (f *fakeImages) Lease(holder, ref string) (ContainerImage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return ContainerImage{}, f.fail
	}
	f.leases[holder] = ref
	cfg := `{"config":{"Cmd":["/bin/sh"]}}`
	if f.badConfig {
		cfg = `{"config":`
	}
	layers := []string{f.layer}
	for len(layers) < f.layers {
		layers = append(layers, f.layer)
	}
	return ContainerImage{ID: "sha256:" + strings.Repeat("a", 64), Ref: ref, Config: []byte(cfg), Layers: layers}, nil
}

func (f *fakeImages) Release(holder string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.leases, holder)
	return nil
}

func (f *fakeImages) Holders() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(maps.Keys(f.leases))
}

func (f *fakeImages) set(fn func(*fakeImages)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}
