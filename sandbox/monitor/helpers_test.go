package monitor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/hack/testimages"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/sandbox/runtime/runtimetest"
)

// launchHelperEnv makes the test binary a launcher that exits right after Launch: the
// value is a monitor.json; it prints the Started as JSON (TestSurvivesLauncher).
const launchHelperEnv = "BERTH_MONITOR_TEST_LAUNCH"

var shared struct {
	once   sync.Once
	dir    string // removed by TestMain
	bin    string // the built berth-monitor
	rootfs string // busybox rootfs
	err    error
}

func TestMain(m *testing.M) {
	if cfg := os.Getenv(launchHelperEnv); cfg != "" {
		os.Exit(launchHelper(cfg))
	}
	code := m.Run()
	if shared.dir != "" {
		_ = os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

func launchHelper(cfgJSON string) int {
	var cfg Config
	if err := json.Unmarshal([]byte(cfgJSON), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	started, err := Launch(ctx, os.Getenv(launchHelperEnv+"_BIN"), cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	_ = json.NewEncoder(os.Stdout).Encode(started)
	return 0
}

// prepare builds the monitor and a busybox rootfs once for the package's tests.
func prepare(t *testing.T) (bin, rootfs string) {
	t.Helper()
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		if shared.dir, shared.err = os.MkdirTemp("", "berth-monitor-test-"); shared.err != nil {
			return
		}
		shared.bin = filepath.Join(shared.dir, "berth-monitor")
		// Built as it should be installed: static (no cgo: net would otherwise link
		// libc for its resolver, which the monitor never uses) and stripped.
		build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", shared.bin, "github.com/berth-runtime/berth/cmd/berth-monitor")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := build.CombinedOutput()
		if err != nil {
			shared.err = fmt.Errorf("go build: %v: %s", err, out)
			return
		}
		busybox, err := testimages.EnsureBusybox(ctx)
		if err != nil {
			shared.err = err
			return
		}
		shared.rootfs = filepath.Join(shared.dir, "rootfs")
		shared.err = makeRootfs(shared.rootfs, busybox)
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.bin, shared.rootfs
}

func makeRootfs(rootfs, busybox string) error {
	bin := filepath.Join(rootfs, "bin")
	for _, d := range []string{bin, filepath.Join(rootfs, "proc"), filepath.Join(rootfs, "dev")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	data, err := os.ReadFile(busybox)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(bin, "busybox"), data, 0o755); err != nil {
		return err
	}
	for _, name := range []string{"sh", "echo", "sleep", "cat", "yes", "head", "tail", "test", "[", "stty"} {
		if err := os.Symlink("busybox", filepath.Join(bin, name)); err != nil {
			return err
		}
	}
	return nil
}

// harness runs containers under a monitor with runc.
type harness struct {
	t      *testing.T
	env    *runtimetest.Env
	bin    string
	rootfs string
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	env := runtimetest.NewEnv(t, "runc") // skips unless root with runc
	bin, rootfs := prepare(t)
	return &harness{t: t, env: env, bin: bin, rootfs: rootfs}
}

func newID(t *testing.T) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// spec is a busybox container spec with /bin in PATH (and a devpts for terminals).
func (h *harness) spec(id string, args ...string) *specs.Spec {
	s := h.env.Spec(id, h.rootfs, args...)
	s.Process.Env = []string{"PATH=/bin"}
	s.Mounts = append(s.Mounts, specs.Mount{
		Destination: "/dev/pts", Type: "devpts", Source: "devpts",
		Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"},
	})
	return s
}

// config is a monitor config for spec, with a Dir longer than a socket path may be.
func (h *harness) config(spec *specs.Spec) Config {
	h.t.Helper()
	id := spec.Hostname
	dir := filepath.Join(h.t.TempDir(), strings.Repeat("d", 60), "containers", id)
	if len(dir) <= 150 {
		h.t.Fatalf("dir %s is too short to test the socket paths", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		h.t.Fatal(err)
	}
	return Config{
		ID: id, Runtime: h.env.Runtime, RuntimeRoot: h.env.Root, Bundle: h.env.Bundle(spec),
		Dir: dir, LogPath: filepath.Join(h.t.TempDir(), "0.log"),
	}
}

// launch starts a monitor and makes sure it is gone, and reaped, when the test ends.
func (h *harness) launch(cfg Config) Started {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	started, err := Launch(ctx, h.bin, cfg)
	if err != nil {
		h.t.Fatalf("Launch: %v\nmonitor.log: %s", err, tail(filepath.Join(cfg.Dir, diagName), 4096))
	}
	h.t.Cleanup(func() { h.stopMonitor(cfg.ID, started.MonitorPID) })
	return started
}

// stopMonitor ends the container, so that its monitor exits, and reaps the monitor.
func (h *harness) stopMonitor(id string, pid int) {
	_ = exec.Command(h.env.Runtime, "--root="+h.env.Root, "kill", id, "KILL").Run()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var ws unix.WaitStatus
		got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		if got == pid || err != nil {
			return
		}
		if time.Now().After(deadline) {
			h.t.Errorf("monitor %d still running; killing it", pid)
			_ = unix.Kill(pid, unix.SIGKILL)
			_, _ = unix.Wait4(pid, &ws, 0, nil)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (h *harness) runtime(args ...string) {
	h.t.Helper()
	out, err := exec.Command(h.env.Runtime, append([]string{"--root=" + h.env.Root}, args...)...).CombinedOutput()
	if err != nil {
		h.t.Fatalf("runc %v: %v: %s", args, err, out)
	}
}

func (h *harness) wait(cfg Config, monitorPID int) Exit {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := Wait(ctx, cfg.Dir, monitorPID)
	if err != nil {
		h.t.Fatalf("Wait: %v\nmonitor.log: %s", err, tail(filepath.Join(cfg.Dir, diagName), 4096))
	}
	return e
}

// logLines reads a CRI log, checks each line's timestamp and returns the lines without it.
func logLines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var lines []string
	for line := range strings.Lines(string(data)) {
		ts, rest, _ := strings.Cut(strings.TrimSuffix(line, "\n"), " ")
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
			t.Errorf("log line %q: %v", line, err)
		}
		lines = append(lines, rest)
	}
	return lines
}

// eventually polls cond for up to 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var errdefsFailedPrecondition = errdefs.ErrFailedPrecondition
