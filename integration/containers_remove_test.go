package integration

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestContainerExitKillsLeftovers: in a pod that shares its PID namespace (the
// default), a container's init can exit and leave a process behind in its cgroup
// (reparented to the pod's pause). Once the exit is recorded, berth deletes the
// container from its OCI runtime, which kills that process, as containerd does on a
// task's exit; RemoveContainer then finds the runtime's part done and takes the rest,
// cgroup included.
func TestContainerExitKillsLeftovers(t *testing.T) {
	e := newCtrEnv(t)
	// A sleep no other test runs, to find it among the host's processes.
	arg := fmt.Sprintf("%d", 100000+time.Now().UnixNano()%800000)
	id := e.run(t, ctrConfig("leaves", sh("sleep "+arg+" & while [ ! -e /tmp/go ]; do sleep 1; done; exit 0")))
	e.removeAtEnd(t, id) // idempotent: a no-op once the test removed it
	waitSleepers(t, arg, id, 1, "the background sleep to start")
	e.exec(t, id, "touch", "/tmp/go")
	e.waitExited(t, id, 30*time.Second)
	waitSleepers(t, arg, id, 0, "the process the exited container left to be killed")
	e.remove(t, id)
	for _, c := range berthCgroups() {
		if filepath.Base(c) == id {
			t.Errorf("the container's cgroup %s is left after RemoveContainer", c)
		}
	}
}

// waitSleepers waits up to 10 s until n processes `sleep arg` live in container id's
// cgroup.
func waitSleepers(t *testing.T, arg, id string, n int, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := sleepersOf(t, arg, id)
		if len(got) == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited 10s for %s: processes 'sleep %s' in the container's cgroup: %v", what, arg, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sleepersOf lists the live (not zombie) processes `sleep arg` in container id's cgroup.
func sleepersOf(t *testing.T, arg, id string) []string {
	t.Helper()
	var out []string
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		cmdline, err := os.ReadFile(filepath.Join(p, "cmdline"))
		if err != nil || string(cmdline) != "sleep\x00"+arg+"\x00" {
			continue
		}
		cg, _ := os.ReadFile(filepath.Join(p, "cgroup"))
		stat, _ := os.ReadFile(filepath.Join(p, "stat"))
		_, state, _ := strings.Cut(string(stat), ") ")
		if bytes.Contains(cg, []byte("/"+id)) && state != "" && state[0] != 'Z' {
			out = append(out, filepath.Base(p))
		}
	}
	return out
}
