package runtime_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/oomscore"
	"github.com/berth-runtime/berth/sandbox/pause"
	"github.com/berth-runtime/berth/sandbox/runtime"
	"github.com/berth-runtime/berth/sandbox/runtime/runtimetest"
)

// fixture is one test's runtime, its Env and the pause rootfs its containers run.
type fixture struct {
	env    *runtimetest.Env
	rt     *runtime.Runtime
	rootfs string
}

// newFixture prepares containers for the runtime called name, through the executable
// at path (the real one, or a wrapper around it) when path is not empty.
func newFixture(t *testing.T, name, path string) *fixture {
	t.Helper()
	env := runtimetest.NewEnv(t, name)
	if path == "" {
		path = env.Runtime
	}
	rootfs, err := pause.Rootfs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{env: env, rootfs: rootfs, rt: &runtime.Runtime{Name: name, Path: path, Root: env.Root}}
}

// bundle writes the bundle of a pause container called id.
func (f *fixture) bundle(id string, edit ...func(*specs.Spec)) string {
	spec := f.env.Spec(id, f.rootfs, pause.Args()...)
	for _, e := range edit {
		e(spec)
	}
	return f.env.Bundle(spec)
}

// requireClean fails the test if a container or cgroup is left.
func (f *fixture) requireClean(t *testing.T) {
	t.Helper()
	containers, cgroups := f.env.Leftovers()
	if len(containers) > 0 || len(cgroups) > 0 {
		t.Errorf("left behind: containers %q, cgroups %q", containers, cgroups)
	}
	if states, err := f.rt.List(context.Background()); err != nil || len(states) > 0 {
		t.Errorf("list: %v, %v", states, err)
	}
}

// waitStatus polls the state until it is want.
func waitStatus(t *testing.T, rt *runtime.Runtime, id, want string) runtime.State {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := rt.State(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if st.Status == want {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is %s, want %s", id, st.Status, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRuncRunLifecycle(t *testing.T) {
	f := newFixture(t, "runc", "")
	ctx := context.Background()
	const id = "lifecycle"
	bundle := f.bundle(id)
	before := time.Now()
	pid, err := f.rt.Run(ctx, id, runtime.CreateOptions{Bundle: bundle})
	if err != nil {
		t.Fatal(err)
	}
	st := waitStatus(t, f.rt, id, runtime.StatusRunning)
	if st.ID != id || st.Pid != pid || st.Bundle != bundle || st.Created.Before(before.Add(-time.Second)) {
		t.Errorf("state %+v (pid %d, bundle %s)", st, pid, bundle)
	}
	if exe, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe"); exe != "/pause" {
		t.Errorf("container runs %q", exe)
	}
	list, err := f.rt.List(ctx)
	if err != nil || len(list) != 1 || list[0].ID != id {
		t.Errorf("list: %+v, %v", list, err)
	}

	if err := f.rt.Kill(ctx, id, syscall.SIGTERM, false); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, f.rt, id, runtime.StatusStopped)
	if err := f.rt.Kill(ctx, id, syscall.SIGTERM, false); err != nil {
		t.Errorf("kill of a stopped container: %v", err)
	}
	for i := range 2 {
		if err := f.rt.Delete(ctx, id, false); err != nil {
			t.Errorf("delete #%d: %v", i+1, err)
		}
	}
	if _, err := f.rt.State(ctx, id); !errdefs.IsNotFound(err) {
		t.Errorf("state after delete: %v, want not found", err)
	}
	if err := f.rt.Kill(ctx, id, syscall.SIGKILL, true); err != nil {
		t.Errorf("kill of an absent container: %v", err)
	}
	if err := f.rt.Start(ctx, id); !errdefs.IsNotFound(err) {
		t.Errorf("start of an absent container: %v, want not found", err)
	}
	f.requireClean(t)
}

func TestRuncCreateStart(t *testing.T) {
	f := newFixture(t, "runc", "")
	ctx := context.Background()
	const id = "create-start"
	bundle := f.bundle(id)
	pidFile := filepath.Join(t.TempDir(), "pid")
	pid, err := f.rt.Create(ctx, id, runtime.CreateOptions{Bundle: bundle, PidFile: pidFile})
	if err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(pidFile); strings.TrimSpace(string(data)) != strconv.Itoa(pid) {
		t.Errorf("pid file %q, pid %d", data, pid)
	}
	if st := waitStatus(t, f.rt, id, runtime.StatusCreated); st.Pid != pid {
		t.Errorf("created pid %d, want %d", st.Pid, pid)
	}
	if _, err := f.rt.Create(ctx, id, runtime.CreateOptions{Bundle: bundle}); !errdefs.IsAlreadyExists(err) {
		t.Errorf("second create: %v, want already exists", err)
	}
	waitStatus(t, f.rt, id, runtime.StatusCreated) // the failed create did not delete it
	if err := f.rt.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, f.rt, id, runtime.StatusRunning)
	if err := f.rt.Start(ctx, id); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("second start: %v, want failed precondition", err)
	}
	if err := f.rt.Delete(ctx, id, false); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("delete of a running container without force: %v, want failed precondition", err)
	}
	if err := f.rt.Delete(ctx, id, true); err != nil {
		t.Fatal(err)
	}
	f.requireClean(t)
}

// TestRuncStdio: the container gets the files given, or /dev/null, and no pipe.
func TestRuncStdio(t *testing.T) {
	f := newFixture(t, "runc", "")
	ctx := context.Background()
	out, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	pid, err := f.rt.Run(ctx, "stdio", runtime.CreateOptions{Bundle: f.bundle("stdio"), Stdout: out})
	if err != nil {
		t.Fatal(err)
	}
	defer f.rt.Delete(ctx, "stdio", true)
	want := map[int]string{0: "/dev/null", 1: out.Name(), 2: "/dev/null"}
	for fd, target := range want {
		// The container sees the host path of an inherited file through /proc.
		link, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/fd/" + strconv.Itoa(fd))
		if err != nil {
			t.Fatal(err)
		}
		if link != target {
			t.Errorf("fd %d is %s, want %s", fd, link, target)
		}
	}
}

func TestRuncUpdate(t *testing.T) {
	f := newFixture(t, "runc", "")
	ctx := context.Background()
	const id = "update"
	if _, err := f.rt.Run(ctx, id, runtime.CreateOptions{Bundle: f.bundle(id)}); err != nil {
		t.Fatal(err)
	}
	defer f.rt.Delete(ctx, id, true)
	limit, pids := int64(64<<20), int64(100)
	res := &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}, Pids: &specs.LinuxPids{Limit: &pids}}
	if err := f.rt.Update(ctx, id, res); err != nil {
		t.Fatal(err)
	}
	checks := map[string]string{"memory/memory.limit_in_bytes": "67108864", "pids/pids.max": "100"}
	for file, want := range checks {
		hierarchy, name, _ := strings.Cut(file, "/")
		path := filepath.Join("/sys/fs/cgroup", hierarchy, f.env.CgroupsPath(id), name)
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", hierarchy)); err != nil {
			t.Skipf("no cgroup v1 %s hierarchy", hierarchy)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(data)); got != want {
			t.Errorf("%s = %s, want %s", path, got, want)
		}
	}
	if err := f.rt.Update(ctx, "absent", res); !errdefs.IsNotFound(err) {
		t.Errorf("update of an absent container: %v, want not found", err)
	}
}

// TestCrun runs what this machine lets crun do: absent containers everywhere, and a
// container where crun supports the cgroup layout.
func TestCrun(t *testing.T) {
	f := newFixture(t, "crun", "")
	ctx := context.Background()
	if _, err := f.rt.State(ctx, "absent"); !errdefs.IsNotFound(err) {
		t.Errorf("state: %v, want not found", err)
	}
	if err := f.rt.Kill(ctx, "absent", syscall.SIGTERM, false); err != nil {
		t.Errorf("kill: %v", err)
	}
	if err := f.rt.Delete(ctx, "absent", true); err != nil {
		t.Errorf("delete: %v", err)
	}
	if list, err := f.rt.List(ctx); err != nil || len(list) != 0 {
		t.Errorf("list: %v, %v", list, err)
	}
	const id = "crun"
	_, err := f.rt.Run(ctx, id, runtime.CreateOptions{Bundle: f.bundle(id)})
	if err != nil && strings.Contains(err.Error(), "not supported") {
		f.requireClean(t)
		t.Skipf("crun cannot run containers here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, f.rt, id, runtime.StatusRunning)
	if err := f.rt.Kill(ctx, id, syscall.SIGTERM, false); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, f.rt, id, runtime.StatusStopped)
	if err := f.rt.Delete(ctx, id, false); err != nil {
		t.Fatal(err)
	}
	f.requireClean(t)
}

func TestRunningPauseListedOnce(t *testing.T) {
	f := newFixture(t, "runc", "")
	ctx := context.Background()
	ids := []string{"a", "b", "c"}
	for _, id := range ids {
		if _, err := f.rt.Run(ctx, id, runtime.CreateOptions{Bundle: f.bundle(id)}); err != nil {
			t.Fatal(err)
		}
	}
	list, err := f.rt.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range list {
		got = append(got, s.ID)
		if s.Status != runtime.StatusRunning || s.Pid <= 0 {
			t.Errorf("%+v", s)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, ids) {
		t.Errorf("list %q, want %q", got, ids)
	}
	for _, id := range ids {
		if err := f.rt.Delete(ctx, id, true); err != nil {
			t.Error(err)
		}
	}
	f.requireClean(t)
}

// TestOOMScoreClamp: where berthd lacks CAP_SYS_RESOURCE, a spec asking for a lower
// oom_score_adj than berthd's fails in runc, and oomscore.Clamp's value works.
func TestOOMScoreClamp(t *testing.T) {
	f := newFixture(t, "runc", "")
	ctx := context.Background()
	withScore := func(score int) func(*specs.Spec) {
		return func(s *specs.Spec) { s.Process.OOMScoreAdj = &score }
	}
	if oomscore.RestrictionReason() != "" {
		_, err := f.rt.Run(ctx, "too-low", runtime.CreateOptions{Bundle: f.bundle("too-low", withScore(-999))})
		if err == nil {
			t.Fatal("runc lowered oom_score_adj without CAP_SYS_RESOURCE")
		}
		t.Logf("unclamped: %v", err)
		f.requireClean(t)
	}
	want := oomscore.Clamp(-999)
	pid, err := f.rt.Run(ctx, "clamped", runtime.CreateOptions{Bundle: f.bundle("clamped", withScore(want))})
	if err != nil {
		t.Fatal(err)
	}
	defer f.rt.Delete(ctx, "clamped", true)
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/oom_score_adj")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(data)); got != strconv.Itoa(want) {
		t.Errorf("oom_score_adj %s, want %d", got, want)
	}
}
