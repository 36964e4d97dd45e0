package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-runtime/berth/sandbox/runtime"
	"github.com/berth-runtime/berth/sandbox/runtime/runtimetest"
)

// TestTimedOutExecLeavesNothing: an exec whose deadline ends while the runtime is
// still busy starting it, as under emulation, where runc takes longer than a 1 s
// ExecSync timeout, leaves no process in the container and no zombie with the caller.
// Killing the runtime half-way once orphaned the process it had started to berthd (a
// child subreaper), which never killed nor reaped it; the PID namespace's init then
// could not exit, and StopPodSandbox failed with pause "still running 10s after
// SIGKILL". The last step repeats that: the container's init must die when killed.
func TestTimedOutExecLeavesNothing(t *testing.T) {
	env := runtimetest.NewEnv(t, "runc")
	rootfs := busyboxRootfs(t)
	runtime.SetExecStartLimit(t, 3*time.Second)
	real := &runtime.Runtime{Name: "runc", Path: env.Runtime, Root: env.Root}
	tests := []struct {
		name     string
		mode     string
		detached bool
	}{
		// The runtime started the process, then takes 2 s more to return.
		{name: "slow runtime", mode: runtimetest.ModeSlowAfter},
		{name: "slow runtime (detached)", mode: runtimetest.ModeSlowAfter, detached: true},
		// It never returns: past the start limit it is killed with its process group.
		{name: "stuck runtime", mode: runtimetest.ModeHangAfter},
		{name: "stuck runtime (detached)", mode: runtimetest.ModeHangAfter, detached: true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := fmt.Sprintf("slowexec%d", i)
			runBusybox(t, env, real, rootfs, id, "sleep", "1000")
			// After the run: the container's init is no child of the test's.
			setSubreaper(t, tt.detached)
			defer setSubreaper(t, false)
			rt := &runtime.Runtime{Name: "runc", Path: runtimetest.FailingRuntime(t, env.Runtime, "exec", tt.mode), Root: env.Root}

			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			code, err := rt.Exec(ctx, id, runtime.ExecOptions{Args: []string{"sleep", "4321"}})
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("exec: exit %d, error %v; want the deadline's", code, err)
			}
			for _, cmd := range containerProcs(t, env, id) {
				if cmd == "sleep 4321" {
					t.Errorf("the timed-out exec left %q in the container", cmd)
				}
			}
			if z := zombieChildren(); len(z) > 0 {
				t.Errorf("zombie children left: %v", z)
			}
			if err := real.Kill(context.Background(), id, syscall.SIGKILL, false); err != nil {
				t.Fatal(err)
			}
			waitStatus(t, real, id, runtime.StatusStopped)
			if err := real.Delete(context.Background(), id, true); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// zombieChildren lists this process's children that have exited and are not reaped.
func zombieChildren() []string {
	self := strconv.Itoa(os.Getpid())
	entries, _ := os.ReadDir("/proc")
	var zombies []string
	for _, e := range entries {
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(data)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		if f := strings.Fields(s[i+1:]); len(f) > 1 && f[0] == "Z" && f[1] == self {
			zombies = append(zombies, s[:i+1])
		}
	}
	return zombies
}
