package runtimetest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Env is a place for tests to run real containers: a runtime state root of their own
// and a cgroup parent of their own, both removed with everything in them when the test
// ends, whether it passed or not.
type Env struct {
	// Runtime is the real runtime's resolved path.
	Runtime string
	// Root is the runtime state directory (--root).
	Root string
	// CgroupParent is a cgroup path ("/berth-test-<pid>-<n>") under which the
	// containers' cgroups go (see CgroupsPath).
	CgroupParent string
	t            testing.TB
}

// NewEnv makes an Env for the runtime named or found at runtime, or skips the test when
// it cannot run containers here: not root, or no such runtime.
func NewEnv(t testing.TB, runtime string) *Env {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("running containers needs root")
	}
	path, err := exec.LookPath(runtime)
	if err != nil {
		t.Skipf("%s not installed", runtime)
	}
	e := &Env{
		Runtime:      path,
		Root:         filepath.Join(t.TempDir(), "state"),
		CgroupParent: fmt.Sprintf("/berth-test-%d-%d", os.Getpid(), time.Now().UnixNano()),
		t:            t,
	}
	t.Cleanup(e.cleanup)
	return e
}

// CgroupsPath is the linux.cgroupsPath for container id (cgroupfs driver).
func (e *Env) CgroupsPath(id string) string { return e.CgroupParent + "/" + id }

// ociVersion is the spec version test bundles declare: the oldest the supported
// runtimes share (crun 1.8 refuses the 1.3.0 of the specs-go this module uses).
const ociVersion = "1.0.2"

// Spec is a minimal OCI spec for a test container: args run as root from rootfs (an
// absolute path, mounted read-only) in new PID, IPC, UTS, mount and network namespaces,
// with /proc and a tmpfs /dev, no capabilities, and its cgroup under the Env's parent.
func (e *Env) Spec(id, rootfs string, args ...string) *specs.Spec {
	return &specs.Spec{
		Version: ociVersion,
		Process: &specs.Process{
			Args:            args,
			Cwd:             "/",
			Env:             []string{"PATH=/"},
			NoNewPrivileges: true,
			Capabilities:    &specs.LinuxCapabilities{},
		},
		Root:     &specs.Root{Path: rootfs, Readonly: true},
		Hostname: id,
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "mode=755", "size=64k"}},
		},
		Linux: &specs.Linux{
			CgroupsPath: e.CgroupsPath(id),
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace},
				{Type: specs.MountNamespace}, {Type: specs.NetworkNamespace},
			},
		},
	}
}

// Bundle writes spec as config.json into a new bundle directory and returns it.
func (e *Env) Bundle(spec *specs.Spec) string {
	e.t.Helper()
	dir := e.t.TempDir()
	data, err := json.MarshalIndent(spec, "", "\t")
	if err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o600); err != nil {
		e.t.Fatal(err)
	}
	return dir
}

// Leftovers lists what is left under the Env: container state directories in Root and
// cgroups under CgroupParent (as "<hierarchy mount>/<path>"). Empty after a clean test.
func (e *Env) Leftovers() (containers, cgroups []string) {
	entries, _ := os.ReadDir(e.Root)
	for _, d := range entries {
		containers = append(containers, d.Name())
	}
	for _, m := range cgroupMounts(e.t) {
		children, _ := os.ReadDir(filepath.Join(m, e.CgroupParent))
		for _, c := range children {
			if c.IsDir() {
				cgroups = append(cgroups, filepath.Join(m, e.CgroupParent, c.Name()))
			}
		}
	}
	return containers, cgroups
}

// cleanup deletes every container left under Root, kills whatever is still in the
// Env's cgroups, and removes them.
func (e *Env) cleanup() {
	entries, _ := os.ReadDir(e.Root)
	for _, d := range entries {
		out, err := exec.Command(e.Runtime, "--root="+e.Root, "delete", "--force", d.Name()).CombinedOutput()
		if err != nil {
			e.t.Logf("cleanup: %s delete --force %s: %v: %s", e.Runtime, d.Name(), err, out)
		}
	}
	for _, m := range cgroupMounts(e.t) {
		parent := filepath.Join(m, e.CgroupParent)
		children, _ := os.ReadDir(parent)
		for _, c := range children {
			if c.IsDir() {
				removeCgroup(e.t, filepath.Join(parent, c.Name()))
			}
		}
		removeCgroup(e.t, parent)
	}
}

// removeCgroup kills the processes in a test cgroup and removes it.
func removeCgroup(t testing.TB, dir string) {
	if _, err := os.Stat(dir); err != nil {
		return
	}
	for range 50 {
		data, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		for _, f := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(f); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		if err := os.Remove(dir); err == nil || os.IsNotExist(err) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("cleanup: cannot remove cgroup %s", dir)
}

// cgroupMounts lists the cgroup and cgroup2 mount points.
func cgroupMounts(t testing.TB) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var mounts []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		sep := slices.Index(fields, "-")
		if sep > 4 && sep+1 < len(fields) && (fields[sep+1] == "cgroup" || fields[sep+1] == "cgroup2") {
			mounts = append(mounts, fields[4])
		}
	}
	return mounts
}
