package runtime_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/sandbox/runtime"
	"github.com/berth-runtime/berth/sandbox/runtime/runtimetest"
)

// TestFailedLaunchLeavesNothing injects failures into run and create, before and after
// the real runtime did its work, and checks that each fails clearly and leaves no
// container, state directory, cgroup or process.
func TestFailedLaunchLeavesNothing(t *testing.T) {
	tests := []struct {
		sub, mode string
		// timeout, when set, is the caller's deadline: a hang must end with it.
		timeout time.Duration
		want    error
	}{
		{sub: "run", mode: runtimetest.ModeFail},
		{sub: "run", mode: runtimetest.ModeFailAfter},
		{sub: "run", mode: runtimetest.ModeHang, timeout: 500 * time.Millisecond, want: context.DeadlineExceeded},
		{sub: "run", mode: runtimetest.ModeHangAfter, timeout: 2 * time.Second, want: context.DeadlineExceeded},
		{sub: "create", mode: runtimetest.ModeFail},
		{sub: "create", mode: runtimetest.ModeFailAfter},
		{sub: "create", mode: runtimetest.ModeHang, timeout: 500 * time.Millisecond, want: context.DeadlineExceeded},
		{sub: "create", mode: runtimetest.ModeHangAfter, timeout: 2 * time.Second, want: context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.sub+"-"+tt.mode, func(t *testing.T) {
			real := runtimetest.NewEnv(t, "runc").Runtime
			f := newFixture(t, "runc", runtimetest.FailingRuntime(t, real, tt.sub, tt.mode))
			ctx := context.Background()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			launch := f.rt.Run
			if tt.sub == "create" {
				launch = f.rt.Create
			}
			const id = "doomed"
			_, err := launch(ctx, id, runtime.CreateOptions{Bundle: f.bundle(id)})
			if err == nil {
				t.Fatal("launch succeeded")
			}
			t.Log(err)
			if !strings.Contains(err.Error(), "runc "+tt.sub+" "+id) {
				t.Errorf("error does not name the operation and the container: %v", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error is not %v", tt.want)
			}
			if tt.want == nil && !strings.Contains(err.Error(), runtimetest.InjectedMessage+" "+tt.sub) {
				t.Errorf("error lacks the runtime's message: %v", err)
			}
			if errdefs.IsAlreadyExists(err) || errdefs.IsNotFound(err) {
				t.Errorf("misclassified: %v", err)
			}
			f.requireClean(t)
			noPauseIn(t, f.env)
		})
	}
}

// noPauseIn fails if a live process is still in the Env's cgroups; the cgroup check
// covers most of it, this covers a process whose cgroup is gone. Zombies are not
// counted: a runtime killed mid-way leaves its init's corpse to the host's init.
func noPauseIn(t *testing.T, env *runtimetest.Env) {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		cgroup, err := os.ReadFile("/proc/" + e.Name() + "/cgroup")
		if err != nil || !strings.Contains(string(cgroup), env.CgroupParent) {
			continue
		}
		status, _ := os.ReadFile("/proc/" + e.Name() + "/status")
		if !strings.Contains(string(status), "State:\tZ") {
			t.Errorf("process %s is still in %s: %s", e.Name(), env.CgroupParent, cgroup)
		}
	}
}

// TestFailedCallsNameTheRuntimeError: failures of the other subcommands carry the
// runtime's message and do not pretend the container is absent.
func TestFailedCallsNameTheRuntimeError(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		sub string
		do  func(*runtime.Runtime, string) error
	}{
		{"start", func(r *runtime.Runtime, id string) error { return r.Start(ctx, id) }},
		{"kill", func(r *runtime.Runtime, id string) error { return r.Kill(ctx, id, syscall.SIGTERM, false) }},
		{"delete", func(r *runtime.Runtime, id string) error { return r.Delete(ctx, id, true) }},
		{"state", func(r *runtime.Runtime, id string) error { _, err := r.State(ctx, id); return err }},
		{"update", func(r *runtime.Runtime, id string) error {
			return r.Update(ctx, id, nil)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.sub, func(t *testing.T) {
			env := runtimetest.NewEnv(t, "runc")
			f := newFixture(t, "runc", runtimetest.FailingRuntime(t, env.Runtime, tt.sub, runtimetest.ModeFail))
			const id = "victim"
			if _, err := f.rt.Create(ctx, id, runtime.CreateOptions{Bundle: f.bundle(id)}); err != nil {
				t.Fatal(err)
			}
			err := tt.do(f.rt, id)
			if tt.sub == "update" { // nil resources never reach the runtime
				if !errdefs.IsInvalidArgument(err) {
					t.Errorf("update nil: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), runtimetest.InjectedMessage+" "+tt.sub) {
				t.Errorf("got %v, want the injected failure", err)
			}
			if errdefs.IsNotFound(err) {
				t.Errorf("a present container reported absent: %v", err)
			}
			real := &runtime.Runtime{Name: "runc", Path: env.Runtime, Root: f.env.Root}
			if err := real.Delete(ctx, id, true); err != nil {
				t.Fatal(err)
			}
			f.requireClean(t)
		})
	}
}

// TestCancelledCreateLeavesNothing kills the real runtime at many points of a create
// (the caller's context ends) and checks that nothing is left each time: neither a
// container, nor a state directory without state, nor an empty cgroup.
func TestCancelledCreateLeavesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("kills runc 24 times")
	}
	f := newFixture(t, "runc", "")
	for i := range 24 {
		id := "cut-" + strings.Repeat("x", i%3) + time.Now().Format("150405.000000")
		bundle := f.bundle(id)
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i)*3*time.Millisecond)
		_, err := f.rt.Create(ctx, id, runtime.CreateOptions{Bundle: bundle})
		cancel()
		if err == nil {
			if err := f.rt.Delete(context.Background(), id, true); err != nil {
				t.Fatal(err)
			}
		} else if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("create %d: %v", i, err)
		}
		containers, cgroups := f.env.Leftovers()
		if len(containers) > 0 || len(cgroups) > 0 {
			t.Fatalf("after a create cut at %v (%v): containers %q, cgroups %q",
				time.Duration(i)*3*time.Millisecond, err, containers, cgroups)
		}
	}
	noPauseIn(t, f.env)
}
