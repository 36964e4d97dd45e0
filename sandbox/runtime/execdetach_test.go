package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-runtime/berth/sandbox/runtime"
	"github.com/berth-runtime/berth/sandbox/runtime/runtimetest"
)

// TestRuncExecDetachedTimeoutReaps ends a detached exec's context after the runtime
// has started the process but before it has exited (a runtime slowed down by a loaded
// machine; here a wrapper that lingers 1 s after `exec --detach`). The process, adopted
// by this process (a subreaper), must still be killed and reaped: a zombie left in the
// container's PID namespace keeps its init from ever finishing its exit, so the
// container could never be stopped.
func TestRuncExecDetachedTimeoutReaps(t *testing.T) {
	env := runtimetest.NewEnv(t, "runc")
	rootfs := busyboxRootfs(t)
	wrapper := filepath.Join(t.TempDir(), "slow-runc")
	script := fmt.Sprintf("#!/bin/sh\n%q \"$@\"\nrc=$?\ncase \" $* \" in *\" exec --detach \"*) sleep 1 ;; esac\nexit $rc\n", env.Runtime)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	rt := &runtime.Runtime{Name: "runc", Path: env.Runtime, Root: env.Root}
	const id = "reap"
	runBusybox(t, env, rt, rootfs, id, "sleep", "1000")
	st := waitStatus(t, rt, id, runtime.StatusRunning)

	setSubreaper(t, true)
	defer setSubreaper(t, false)
	slow := &runtime.Runtime{Name: "runc", Path: wrapper, Root: env.Root}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := slow.Exec(ctx, id, runtime.ExecOptions{Args: []string{"sleep", "1000"}})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("exec = %v, want a deadline error", err)
	}
	if took := time.Since(start); took > 900*time.Millisecond {
		t.Errorf("exec returned %v after its deadline (300ms): it waited for the runtime", took)
	}

	// Once the runtime is done, the exec'd sleep goes; then the container's init can
	// exit when killed.
	deadline := time.Now().Add(10 * time.Second)
	for countSleeps(t, env, id) > 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the timed-out exec's process still runs: %v", containerProcs(t, env, id))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := rt.Kill(context.Background(), id, syscall.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	for !exitedOrGone(st.Pid) {
		if time.Now().After(deadline) {
			t.Fatalf("the container's init (pid %d) did not finish exiting: a process of its PID namespace is left unreaped", st.Pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// countSleeps counts the `sleep 1000` processes in container id.
func countSleeps(t *testing.T, env *runtimetest.Env, id string) int {
	n := 0
	for _, cmd := range containerProcs(t, env, id) {
		if cmd == "sleep 1000" {
			n++
		}
	}
	return n
}

// exitedOrGone says whether pid has finished exiting: a zombie, or reaped.
func exitedOrGone(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	i := strings.LastIndexByte(string(data), ')')
	return i >= 0 && strings.HasPrefix(string(data[i+1:]), " Z")
}
