package integration

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// berthdBinary is built once per test binary by TestMain, in binDir (in the run
// directory, removed when the tests end; other tools built for the tests go there too).
var berthdBinary, binDir string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	if os.Geteuid() != 0 {
		fmt.Println("integration: skipped, berthd needs root")
		return 0
	}
	flag.Parse() // for -test.timeout (stopBeforeTimeout)
	sweepStaleRunDirs()
	var err error
	if runDir, err = makeRunDir(); err != nil {
		fmt.Println("integration:", err)
		return 1
	}
	defer endRun("end of the tests")
	stopOnSignals()
	dir := filepath.Join(runDir, "bin")
	if err := os.Mkdir(dir, 0o755); err != nil {
		fmt.Println("integration:", err)
		return 1
	}
	binDir = dir
	berthdBinary = filepath.Join(dir, "berthd")
	build := exec.Command("go", "build", "-race", "-o", berthdBinary, "github.com/berth-runtime/berth/cmd/berthd")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Println("integration: building berthd:", err)
		return 1
	}
	// berthd finds the monitor next to itself. Built without -race: one runs per
	// container, and the race detector would multiply its memory.
	build = exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(dir, "berth-monitor"), "github.com/berth-runtime/berth/cmd/berth-monitor")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Println("integration: building berth-monitor:", err)
		return 1
	}
	before := defaultCgroupParents()
	parentsBefore.Store(&before)
	cancel := stopBeforeTimeout()
	code := m.Run()
	cancel()
	return code
}

// defaultCgroupParents lists the existing directories of berth's default cgroup parent
// (/berth), where pods that name no cgroup_parent put their processes.
func defaultCgroupParents() map[string]bool {
	found := map[string]bool{}
	paths, _ := filepath.Glob("/sys/fs/cgroup/*/berth")
	if _, err := os.Stat("/sys/fs/cgroup/berth"); err == nil {
		paths = append(paths, "/sys/fs/cgroup/berth")
	}
	for _, p := range paths {
		found[p] = true
	}
	return found
}

// parentsBefore holds the default parents (defaultCgroupParents) there were before
// the tests ran, once TestMain has looked.
var parentsBefore atomic.Pointer[map[string]bool]

// removeNewParents removes the default parents the tests created (the OCI runtime
// leaves the parent when it removes a container's cgroup) when they are empty: other
// berthds on the machine may have cgroups there by now, and those are never touched.
func removeNewParents() {
	before := parentsBefore.Load()
	if before == nil {
		return
	}
	for p := range defaultCgroupParents() {
		if !(*before)[p] {
			_ = os.Remove(p) // fails while a cgroup of anyone's is in it
		}
	}
}

// testRuncEnv names the runc the tests run berthd's "runc" handler with (hack/test.sh
// runs them once more with the distribution's runc 1.1.5); unset, berthd finds runc
// in $PATH.
const testRuncEnv = "BERTH_TEST_RUNC"

// testRunc is the runc binary berthd runs in these tests.
func testRunc(t testing.TB) string {
	t.Helper()
	name := os.Getenv(testRuncEnv)
	if name == "" {
		name = "runc"
	}
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("runc: %v", err)
	}
	return p
}

// daemon is one running berthd with its own root, state and socket.
type daemon struct {
	t      *testing.T
	dir    string
	socket string
	config string
	cmd    *exec.Cmd
	log    *lockedBuffer
	done   chan struct{}

	runtime runtimeapi.RuntimeServiceClient
	images  runtimeapi.ImageServiceClient
}

// daemonOptions shape the berthd a test starts.
type daemonOptions struct {
	// Config is TOML appended to the test config (e.g. mirrors for a test registry).
	Config string
	// Dir reuses a root from an earlier daemon (restart tests); "" makes a new one.
	Dir string
	// NRI is TOML appended to the [nri] table, which the harness always writes so that
	// the daemon's NRI socket and plugin directory are its own (nriSocket).
	NRI string
}

// startDaemon starts berthd and waits until it answers Version. It is stopped (SIGTERM,
// then SIGKILL) when the test ends; its log is printed if the test failed.
func startDaemon(t *testing.T, opts daemonOptions) *daemon {
	t.Helper()
	dir := opts.Dir
	if dir == "" {
		var err error
		// Short path: unix socket paths are limited to 108 bytes.
		dir, err = os.MkdirTemp(runDir, "d-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			// What its pods and containers left (nothing, unless berthd leaked it):
			// processes, their cgroups, mounts. The test's own cleanups ran before.
			ids := idsOf(dir)
			if n := stopDirProcs(dir); n > 0 {
				t.Logf("stopped %d process(es) berthd's pods and containers left", n)
			}
			removeIDCgroups(ids)
			removeRunDir(dir)
		})
		// As berthd makes its own directories: the root of a user-namespaced pod, no one
		// on the host, must be able to pass through to its root filesystem.
		if err := os.Chmod(dir, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	d := &daemon{
		t: t, dir: dir,
		socket: filepath.Join(dir, "berth.sock"),
		config: filepath.Join(dir, "berth.toml"),
		log:    &lockedBuffer{},
		done:   make(chan struct{}),
	}
	config := fmt.Sprintf("%s\n[nri]\nsocket_path = %q\nplugin_path = %q\n%s\n",
		opts.Config, d.nriSocket(), filepath.Join(dir, "nri-plugins"), opts.NRI)
	if rt := os.Getenv(testRuncEnv); rt != "" && !strings.Contains(config, "[runtimes.runc]") {
		// Appended: a table header before opts.Config would capture its top-level keys.
		config += fmt.Sprintf("\n[runtimes.runc]\npath = %q\n", rt)
	}
	if err := os.WriteFile(d.config, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	d.cmd = exec.Command(berthdBinary,
		"--config", d.config, "--config-dir", filepath.Join(dir, "berth.d"),
		"--root", d.root(), "--state", filepath.Join(dir, "state"),
		"--listen", "unix://"+d.socket, "--log-level", "debug")
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		d.stop()
		if t.Failed() {
			t.Logf("berthd log:\n%s", d.log.String())
		}
	})
	conn, err := grpc.NewClient("unix://"+d.socket, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	d.runtime = runtimeapi.NewRuntimeServiceClient(conn)
	d.images = runtimeapi.NewImageServiceClient(conn)
	d.waitReady()
	return d
}

// nriSocket is where the daemon serves NRI.
func (d *daemon) nriSocket() string { return filepath.Join(d.dir, "nri.sock") }

func (d *daemon) waitReady() {
	d.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-d.done:
			d.t.Fatalf("berthd exited during start-up:\n%s", d.log.String())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := d.images.ImageFsInfo(ctx, &runtimeapi.ImageFsInfoRequest{})
		cancel()
		if err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	d.t.Fatalf("berthd did not become ready within 30s:\n%s", d.log.String())
}

// stop sends SIGTERM and waits; after 15 s it kills berthd.
func (d *daemon) stop() {
	select {
	case <-d.done:
		return
	default:
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(15 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.done
	}
}

// root is berthd's --root; imageRoot is where its image service keeps its state.
func (d *daemon) root() string      { return filepath.Join(d.dir, "root") }
func (d *daemon) imageRoot() string { return filepath.Join(d.root(), "image") }

// kill ends berthd with SIGKILL, as a crash would.
func (d *daemon) kill() {
	_ = d.cmd.Process.Kill()
	<-d.done
}

func ctxTimeout(t *testing.T, timeout time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return ctx
}

// lockedBuffer collects berthd's output from its pipe goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *lockedBuffer) Contains(s string) bool { return strings.Contains(b.String(), s) }
