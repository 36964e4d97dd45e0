package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/cmd/wiring"
	"github.com/berth-runtime/berth/hack/testimages"
	"github.com/berth-runtime/berth/image"
	"github.com/berth-runtime/berth/internal/config"
	"github.com/berth-runtime/berth/internal/oomscore"
	"github.com/berth-runtime/berth/network"
	"github.com/berth-runtime/berth/sandbox"
	"github.com/berth-runtime/berth/sandbox/cgroups"
	"github.com/berth-runtime/berth/sandbox/pause"
	"github.com/berth-runtime/berth/sandbox/runtime"
)

const pluginDir = "/usr/lib/cni"

// busyboxRef is the image every container runs (served by the in-process registry).
const busyboxRef = "registry.k8s.io/e2e-test-images/busybox:1.29-2"

// rawCgroupParent holds the cgroups of the raw runc rows.
const rawCgroupParent = "berth-bench-ctr"

func main() {
	n := flag.Int("n", 50, "containers (at most 200: one /24 of pod addresses)")
	sharedPID := flag.Bool("shared-pid", false, "pods share one PID namespace (a pause process per pod); "+
		"default: a PID namespace per container, as kubelet asks by default (no pause)")
	root := flag.String("root", "", "run directory (default: a new one under /var/tmp)")
	debug := flag.Bool("debug", false, "berth's debug log on standard error")
	flag.Parse()
	if err := run(min(*n, 200), *sharedPID, *root, *debug); err != nil {
		fmt.Fprintln(os.Stderr, "containers:", err)
		os.Exit(1)
	}
}

// env is what one run set up.
type env struct {
	ctx       context.Context // canceled on SIGINT/SIGTERM: the run stops and cleans up
	dir       string
	bridge    string
	runc      string
	sharedPID bool
	images    *image.Service
	layers    []string // the busybox snapshots, base first
	pods      *sandbox.Service
	rawIDs    map[string]bool // raw runc containers that may exist, for the cleanup
	made      []string        // every container berth created
}

func run(n int, sharedPID bool, root string, debug bool) error {
	if os.Geteuid() != 0 {
		return errors.New("needs root")
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	e, cleanup, err := setup(ctx, root, sharedPID, debug)
	defer cleanup()
	if err != nil {
		return err
	}
	r := newRows()
	if err := e.bench(n, r); err != nil {
		return err
	}
	r.print(os.Stdout)
	return nil
}

// setup makes the run directory, the network, the image store with busybox pulled
// from an in-process registry, the monitor binary and the pod service. cleanup undoes
// it (and removes whatever pods, containers and raw containers are still up); it is
// safe to call whatever setup reached.
func setup(ctx context.Context, root string, sharedPID, debug bool) (*env, func(), error) {
	var undo []func()
	cleanup := func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	if root == "" {
		var err error
		if root, err = os.MkdirTemp("/var/tmp", "berth-bench-containers-"); err != nil {
			return nil, cleanup, err
		}
		undo = append(undo, func() { removeTree(root) })
	}
	e := &env{ctx: ctx, dir: root, bridge: "bb" + randHex(4), sharedPID: sharedPID,
		rawIDs: map[string]bool{}}
	// The raw rows' cgroup parent, and berth's default one (/berth, where pods that
	// name no cgroup parent put their containers) unless it existed before: runc
	// removes only the leaves.
	berthBefore, _ := filepath.Glob("/sys/fs/cgroup/*/berth")
	undo = append(undo, func() {
		dirs, _ := filepath.Glob("/sys/fs/cgroup/*/" + rawCgroupParent)
		berthNow, _ := filepath.Glob("/sys/fs/cgroup/*/berth")
		for _, d := range append(dirs, berthNow...) {
			if !slices.Contains(berthBefore, d) {
				_ = os.Remove(d) // only when empty
			}
		}
	})
	const fwd = "/proc/sys/net/ipv4/ip_forward"
	before, _ := os.ReadFile(fwd)
	undo = append(undo, func() {
		_ = exec.Command("ip", "link", "del", e.bridge).Run()
		if before != nil {
			_ = os.WriteFile(fwd, before, 0o644)
		}
	})
	if err := e.writeNetwork(); err != nil {
		return nil, cleanup, err
	}
	var err error
	if e.runc, err = exec.LookPath("runc"); err != nil {
		return nil, cleanup, err
	}
	monitorPath := filepath.Join(root, "bin", "berth-monitor")
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", monitorPath, "./cmd/berth-monitor")
	build.Env = append(os.Environ(), "CGO_ENABLED=0") // as hack/start-berthd.sh builds it
	if out, err := build.CombinedOutput(); err != nil {
		return nil, cleanup, fmt.Errorf("go build ./cmd/berth-monitor (run from the repository root): %w\n%s", err, out)
	}
	if err := e.pullBusybox(ctx, &undo); err != nil {
		return nil, cleanup, err
	}
	pauseRootfs, err := pause.Rootfs(filepath.Join(root, "pause"))
	if err != nil {
		return nil, cleanup, err
	}
	netm, err := network.New(network.Config{
		ConfDir: filepath.Join(root, "net.d"), BinDirs: []string{pluginDir}, CacheDir: filepath.Join(root, "cni"),
	}, nil)
	if err != nil {
		return nil, cleanup, err
	}
	cgm, err := cgroups.NewManager(cgroups.Options{})
	if err != nil {
		return nil, cleanup, err
	}
	features, err := runtime.Probe(ctx, e.runc)
	if err != nil {
		return nil, cleanup, err
	}
	var clamp func(int) int
	if oomscore.RestrictionReason() != "" {
		clamp = oomscore.Clamp
	}
	level := slog.LevelWarn
	if debug {
		level = slog.LevelDebug
	}
	rt := &runtime.Runtime{Name: "runc", Path: e.runc, Root: filepath.Join(root, "runtime")}
	e.pods, err = sandbox.New(ctx, sandbox.Config{
		RecordDir: filepath.Join(root, "records", "pods"), StateDir: filepath.Join(root, "state", "pods"),
		Handlers:       map[string]sandbox.Handler{"runc": {Runtime: rt, Features: features}},
		DefaultHandler: "runc", Network: netm, Cgroups: cgm, PauseRootfs: pauseRootfs, PauseArgs: pause.Args(),
		OOMScoreAdj: clamp,
		Log:         slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),

		Images:             wiring.Leases{Service: e.images},
		MonitorPath:        monitorPath,
		ContainerRecordDir: filepath.Join(root, "records", "containers"),
		ContainerStateDir:  filepath.Join(root, "state", "containers"),
		ContainerRWDir:     filepath.Join(root, "records", "rw"),
	})
	if err != nil {
		return nil, cleanup, err
	}
	undo = append(undo, e.teardown)
	return e, cleanup, nil
}

// pullBusybox serves the test image catalogue on loopback, opens the image store with
// the registry as the only mirror and pulls busybox once.
func (e *env) pullBusybox(ctx context.Context, undo *[]func()) error {
	reg, _, err := testimages.ServeCatalogue(ctx)
	if err != nil {
		return err
	}
	*undo = append(*undo, func() { _ = reg.Close() })
	cfg := wiring.ImageConfig(config.Defaults().Image, filepath.Join(e.dir, "image"))
	cfg.Registry = image.RegistryConfig{
		MirrorsOnly: true, Mirrors: map[string][]string{},
		Hosts: map[string]image.HostConfig{reg.Addr(): {PlainHTTP: true}},
	}
	for _, host := range testimages.MirroredRegistries {
		cfg.Registry.Mirrors[host] = []string{reg.URL()}
	}
	if e.images, err = image.New(cfg, nil); err != nil {
		return err
	}
	*undo = append(*undo, func() { _ = e.images.Close() })
	img, err := e.images.Pull(ctx, busyboxRef, nil)
	if err != nil {
		return err
	}
	for _, chain := range img.ChainIDs {
		e.layers = append(e.layers, e.images.SnapshotPath(chain))
	}
	return nil
}

// teardown removes whatever raw containers, containers and pods are still up: all
// that the service lists, once the creates it still runs (one that an interrupt left
// behind its caller) are done.
func (e *env) teardown() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e.pods.Close(ctx)
	for id := range e.rawIDs {
		e.rawRemove(id)
	}
	for _, c := range e.pods.ListContainers(nil) {
		if err := e.pods.RemoveContainer(ctx, c.GetId()); err != nil {
			fmt.Fprintln(os.Stderr, "cleanup:", err)
		}
	}
	for _, p := range e.pods.ListPods(nil) {
		if err := errors.Join(e.pods.StopPod(ctx, p.GetId()), e.pods.RemovePod(ctx, p.GetId())); err != nil {
			fmt.Fprintln(os.Stderr, "cleanup:", err)
		}
	}
	for _, id := range e.made { // none expected; rmdir removes only empty ones
		dirs, _ := filepath.Glob("/sys/fs/cgroup/*" + path.Join(cgroups.DefaultCgroupfsParent, id))
		for _, d := range dirs {
			if os.Remove(d) == nil {
				fmt.Fprintln(os.Stderr, "cleanup: removed the empty cgroup berth left:", d)
			}
		}
	}
}

// removeTree detaches whatever is still mounted under dir, then removes it, so that
// nothing is ever deleted through a mount.
func removeTree(dir string) {
	data, _ := os.ReadFile("/proc/self/mountinfo")
	var mounts []string
	for line := range strings.Lines(string(data)) {
		if f := strings.Fields(line); len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			mounts = append(mounts, f[4])
		}
	}
	for i := len(mounts) - 1; i >= 0; i-- {
		fmt.Fprintln(os.Stderr, "cleanup: still mounted, detaching:", mounts[i])
		_ = unix.Unmount(mounts[i], unix.MNT_DETACH)
	}
	_ = os.RemoveAll(dir)
}

// writeNetwork writes the benchmark's conflist: a bridge, no masquerading.
func (e *env) writeNetwork() error {
	subnet, err := freeSubnet()
	if err != nil {
		return err
	}
	conf, _ := json.Marshal(map[string]any{"cniVersion": "1.0.0", "name": "berth-bench", "plugins": []map[string]any{
		{
			"type": "bridge", "bridge": e.bridge, "isGateway": true, "ipMasq": false, "hairpinMode": true,
			"ipam": map[string]any{"type": "host-local", "ranges": [][]map[string]string{{{"subnet": subnet}}},
				"dataDir": filepath.Join(e.dir, "ipam")},
		},
		{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
		{"type": "loopback"},
	}})
	if err := os.MkdirAll(filepath.Join(e.dir, "net.d"), 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(e.dir, "net.d", "10-bench.conflist"), conf, 0o644)
}

func freeSubnet() (string, error) {
	addrs, _ := net.InterfaceAddrs()
	for x := 0; x < 256; x++ {
		_, sub, _ := net.ParseCIDR(fmt.Sprintf("10.198.%d.0/24", x))
		used := false
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && sub.Contains(ipn.IP) {
				used = true
			}
		}
		if !used {
			return sub.String(), nil
		}
	}
	return "", errors.New("no free subnet in 10.198.0.0/16")
}

func randHex(n int) string {
	b := make([]byte, n)
	f, _ := os.Open("/dev/urandom")
	defer f.Close()
	_, _ = f.Read(b)
	return fmt.Sprintf("%x", b)
}
