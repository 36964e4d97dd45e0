package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/containernetworking/cni/libcni"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/nspin"
	"github.com/berth-runtime/berth/internal/oomscore"
	"github.com/berth-runtime/berth/network"
	"github.com/berth-runtime/berth/sandbox"
	"github.com/berth-runtime/berth/sandbox/cgroups"
	"github.com/berth-runtime/berth/sandbox/infra"
	"github.com/berth-runtime/berth/sandbox/pause"
	"github.com/berth-runtime/berth/sandbox/runtime"
)

const pluginDir = "/usr/lib/cni"

// rawCgroupParent holds the cgroups of the raw runc rows.
const rawCgroupParent = "berth-bench"

func main() {
	n := flag.Int("n", 50, "iterations (at most 1000)")
	maxWall := flag.Duration("max", 5*time.Minute, "stop after this long")
	root := flag.String("root", "", "run directory (default: a new one under /var/tmp)")
	flag.Parse()
	if err := run(min(*n, 1000), *maxWall, *root); err != nil {
		fmt.Fprintln(os.Stderr, "pods:", err)
		os.Exit(1)
	}
}

// env is what one run set up.
type env struct {
	dir     string
	bridge  string
	runc    string
	rootfs  string
	netConf *libcni.NetworkConfigList
	cni     *libcni.CNIConfig
	pods    *sandbox.Service
}

func run(n int, maxWall time.Duration, root string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root")
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return err
	}
	e, cleanup, err := setup(root)
	defer cleanup()
	if err != nil {
		return err
	}
	rows := newRows()
	deadline := time.Now().Add(maxWall)
	for i := -1; i < n && time.Now().Before(deadline); i++ { // i == -1: warm-up, not recorded
		if err := e.iteration(i, rows); err != nil {
			return err
		}
	}
	rows.print()
	return nil
}

// setup makes the run directory, the network, the runtime and the pod service. cleanup
// undoes it and is safe to call whatever setup reached.
func setup(root string) (*env, func(), error) {
	var undo []func()
	cleanup := func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	if root == "" {
		var err error
		if root, err = os.MkdirTemp("/var/tmp", "berth-bench-pods-"); err != nil {
			return nil, cleanup, err
		}
		undo = append(undo, func() { _ = os.RemoveAll(root) })
	}
	e := &env{dir: root, bridge: "bb" + randHex(4)}
	undo = append(undo, func() { // the raw rows' cgroup parent; runc removes only the leaves
		dirs, _ := filepath.Glob("/sys/fs/cgroup/*/" + rawCgroupParent)
		for _, d := range dirs {
			_ = os.Remove(d)
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
	if e.rootfs, err = pause.Rootfs(filepath.Join(root, "pause")); err != nil {
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
	rt := &runtime.Runtime{Name: "runc", Path: e.runc, Root: filepath.Join(root, "runtime")}
	e.pods, err = sandbox.New(context.Background(), sandbox.Config{
		RecordDir: filepath.Join(root, "records"), StateDir: filepath.Join(root, "state"),
		Handlers: map[string]sandbox.Handler{"runc": {Runtime: rt}}, DefaultHandler: "runc",
		Network: netm, Cgroups: cgm, PauseRootfs: e.rootfs, PauseArgs: pause.Args(),
		OOMScoreAdj: oomscore.Clamp,
		Log:         slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return nil, cleanup, err
	}
	e.cni = libcni.NewCNIConfigWithCacheDir([]string{pluginDir}, filepath.Join(root, "rawcni"), nil)
	return e, cleanup, nil
}

// writeNetwork writes the benchmark's conflist, for berth and for the raw libcni calls.
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
	if err := os.WriteFile(filepath.Join(e.dir, "net.d", "10-bench.conflist"), conf, 0o644); err != nil {
		return err
	}
	e.netConf, err = libcni.NetworkConfFromBytes(conf)
	return err
}

// rawPauseBundle writes the bundle of the raw runc row: berth's pause spec with new
// network, IPC and UTS namespaces, as a runtime that does not pin them would run it.
func (e *env) rawPauseBundle(id string) (string, error) {
	spec := infra.Spec(infra.SpecOptions{
		Rootfs: e.rootfs, Args: pause.Args(), CgroupsPath: "/" + rawCgroupParent + "/" + id, OOMScoreAdj: oomscore.Clamp(-998),
	})
	spec.Linux.Namespaces = append(spec.Linux.Namespaces,
		specs.LinuxNamespace{Type: specs.NetworkNamespace}, specs.LinuxNamespace{Type: specs.IPCNamespace},
		specs.LinuxNamespace{Type: specs.UTSNamespace})
	dir := filepath.Join(e.dir, "bundles", id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	data, _ := json.Marshal(spec)
	return dir, os.WriteFile(filepath.Join(dir, "config.json"), data, 0o600)
}

func podConfig(i int, mode runtimeapi.NamespaceMode, name string) *runtimeapi.PodSandboxConfig {
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: fmt.Sprintf("%s-%d", name, i), Namespace: "bench", Uid: randHex(8)},
		Hostname: name,
		Linux:    &runtimeapi.LinuxPodSandboxConfig{},
	}
	if mode != runtimeapi.NamespaceMode_POD {
		cfg.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Pid: mode},
		}
	}
	return cfg
}

func freeSubnet() (string, error) {
	addrs, _ := net.InterfaceAddrs()
	for x := 0; x < 256; x++ {
		_, sub, _ := net.ParseCIDR(fmt.Sprintf("10.197.%d.0/24", x))
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
	return "", fmt.Errorf("no free subnet in 10.197.0.0/16")
}

func randHex(n int) string {
	b := make([]byte, n)
	f, _ := os.Open("/dev/urandom")
	defer f.Close()
	_, _ = f.Read(b)
	return fmt.Sprintf("%x", b)
}

// pinNet pins a network namespace for a raw CNI call.
func (e *env) pinNet(id string) (nspin.Pinned, error) {
	return nspin.Pin(filepath.Join(e.dir, "rawns", id), nspin.Net)
}
