package infra

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/sandbox/pause"
	"github.com/berth-runtime/berth/sandbox/runtime"
	"github.com/berth-runtime/berth/sandbox/runtime/runtimetest"
)

// TestMain makes the test binary a subreaper, as berthd is, so that Stop can reap.
func TestMain(m *testing.M) {
	_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	os.Exit(m.Run())
}

func TestSpec(t *testing.T) {
	tests := []struct {
		name   string
		opts   SpecOptions
		joined map[specs.LinuxNamespaceType]string
	}{
		{
			name:   "pod namespaces",
			opts:   SpecOptions{NetNS: "/run/p/ns/net", IPCNS: "/run/p/ns/ipc", UTSNS: "/run/p/ns/uts"},
			joined: map[specs.LinuxNamespaceType]string{specs.NetworkNamespace: "/run/p/ns/net", specs.IPCNamespace: "/run/p/ns/ipc", specs.UTSNamespace: "/run/p/ns/uts"},
		},
		{
			name:   "host network and IPC",
			opts:   SpecOptions{},
			joined: map[specs.LinuxNamespaceType]string{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Rootfs, tc.opts.Args, tc.opts.CgroupsPath, tc.opts.OOMScoreAdj = "/pause-root", []string{"/pause"}, "/kubepods/pod1/abc", -998
			s := Spec(tc.opts)
			if !s.Root.Readonly || s.Root.Path != "/pause-root" {
				t.Errorf("root = %+v, want the pause rootfs read-only", s.Root)
			}
			p := s.Process
			if c := p.Capabilities; c == nil || len(c.Bounding)+len(c.Effective)+len(c.Permitted)+len(c.Inheritable)+len(c.Ambient) != 0 {
				t.Errorf("capabilities = %+v, want none", c)
			}
			if !p.NoNewPrivileges || p.User.UID == 0 || *p.OOMScoreAdj != -998 {
				t.Errorf("process = %+v", p)
			}
			if s.Linux.CgroupsPath != "/kubepods/pod1/abc" || len(s.Linux.MaskedPaths) == 0 || len(s.Linux.ReadonlyPaths) == 0 {
				t.Errorf("linux = %+v", s.Linux)
			}
			got := map[specs.LinuxNamespaceType]string{}
			var fresh []specs.LinuxNamespaceType
			for _, n := range s.Linux.Namespaces {
				if n.Path == "" {
					fresh = append(fresh, n.Type)
				} else {
					got[n.Type] = n.Path
				}
			}
			slices.Sort(fresh)
			if !slices.Equal(fresh, []specs.LinuxNamespaceType{specs.MountNamespace, specs.PIDNamespace}) {
				t.Errorf("new namespaces %v, want mount and pid only", fresh)
			}
			if len(got) != len(tc.joined) {
				t.Errorf("joined %v, want %v", got, tc.joined)
			}
			for k, v := range tc.joined {
				if got[k] != v {
					t.Errorf("joined %s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

func TestStartStop(t *testing.T) {
	env := runtimetest.NewEnv(t, "runc")
	rootfs, err := pause.Rootfs(filepath.Join(t.TempDir(), "pause"))
	if err != nil {
		t.Fatal(err)
	}
	rt := &runtime.Runtime{Name: "runc", Path: env.Runtime, Root: env.Root}
	ctx := context.Background()
	const id = "infra-test"
	spec := Spec(SpecOptions{Rootfs: rootfs, Args: pause.Args(), CgroupsPath: env.CgroupsPath(id)})
	p, err := Start(ctx, rt, id, filepath.Join(t.TempDir(), "bundle"), spec)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Alive() || p.PID <= 0 || p.StartTime == 0 {
		t.Fatalf("after Start: alive %v, %+v", p.Alive(), p)
	}
	if st, err := rt.State(ctx, id); err != nil || st.Pid != p.PID || st.Status != runtime.StatusRunning {
		t.Fatalf("runtime state %+v, %v", st, err)
	}

	// A restarted berthd finds it again by pid and start time, and not with another start time.
	again, err := Reattach(p.Record)
	if err != nil || !again.Alive() {
		t.Fatalf("Reattach: %v", err)
	}
	again.Close()
	if _, err := Reattach(Record{PID: p.PID, StartTime: p.StartTime + 1}); !errdefs.IsNotFound(err) {
		t.Fatalf("Reattach with a wrong start time = %v, want NotFound", err)
	}

	for range 2 { // idempotent
		if err := Stop(ctx, rt, id, p); err != nil {
			t.Fatal(err)
		}
	}
	if p.Alive() {
		t.Fatal("alive after Stop")
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(p.PID)); !os.IsNotExist(err) {
		t.Fatalf("pause %d still in the process table (not reaped): %v", p.PID, err)
	}
	if _, err := rt.State(ctx, id); !errdefs.IsNotFound(err) {
		t.Fatalf("container still known to the runtime: %v", err)
	}
	if containers, cgroups := env.Leftovers(); len(containers)+len(cgroups) != 0 {
		t.Fatalf("left behind: containers %v, cgroups %v", containers, cgroups)
	}
}

func TestSpecUserAndSeccomp(t *testing.T) {
	filter := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno}
	for _, tc := range []struct {
		name     string
		opts     SpecOptions
		wantUser specs.User
	}{
		{"defaults", SpecOptions{}, specs.User{UID: DefaultID, GID: DefaultID}},
		{"pod's user and filter", SpecOptions{User: &specs.User{UID: 1000, GID: 2000, AdditionalGids: []uint32{3000}}, Seccomp: filter},
			specs.User{UID: 1000, GID: 2000, AdditionalGids: []uint32{3000}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Spec(tc.opts)
			if !reflect.DeepEqual(s.Process.User, tc.wantUser) {
				t.Errorf("user = %+v, want %+v", s.Process.User, tc.wantUser)
			}
			if s.Linux.Seccomp != tc.opts.Seccomp {
				t.Errorf("seccomp = %v, want %v", s.Linux.Seccomp, tc.opts.Seccomp)
			}
			if !s.Root.Readonly {
				t.Error("the pause rootfs is writable")
			}
		})
	}
}

// TestStopReapsOrphans: a process of the pod's PID namespace left an orphan to berthd
// (an exec'd process whose runtime was killed) dies with pause but stays a zombie
// nobody else reaps; pause, the namespace's init, cannot exit before it is reaped.
// Stop reaps it and ends at once instead of failing "still running 10s after SIGKILL".
func TestStopReapsOrphans(t *testing.T) {
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		t.Skip("no nsenter")
	}
	env := runtimetest.NewEnv(t, "runc")
	rootfs, err := pause.Rootfs(filepath.Join(t.TempDir(), "pause"))
	if err != nil {
		t.Fatal(err)
	}
	rt := &runtime.Runtime{Name: "runc", Path: env.Runtime, Root: env.Root}
	ctx := context.Background()
	const id = "infra-orphan"
	spec := Spec(SpecOptions{Rootfs: rootfs, Args: pause.Args(), CgroupsPath: env.CgroupsPath(id)})
	p, err := Start(ctx, rt, id, filepath.Join(t.TempDir(), "bundle"), spec)
	if err != nil {
		t.Fatal(err)
	}
	// nsenter forks sleep into pause's PID namespace; killed, it leaves sleep to us.
	cmd := exec.Command(nsenter, "--target", strconv.Itoa(p.PID), "--pid", "--", "sleep", "1000")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var orphan int
	for deadline := time.Now().Add(10 * time.Second); orphan == 0 && time.Now().Before(deadline); {
		orphan = childOf(cmd.Process.Pid)
		time.Sleep(10 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if orphan == 0 {
		t.Fatal("nsenter started no child")
	}
	start := time.Now()
	if err := Stop(ctx, rt, id, p); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Stop took %v", took)
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(orphan)); !os.IsNotExist(err) {
		t.Errorf("orphan %d still in the process table: %v", orphan, err)
	}
}

// childOf is a child of pid, 0 when it has none.
func childOf(pid int) int {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(data)
		if f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]); len(f) > 1 && f[1] == strconv.Itoa(pid) {
			child, _ := strconv.Atoi(e.Name())
			return child
		}
	}
	return 0
}
